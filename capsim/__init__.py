"""capsim: the command line that composes the emulator, the protocols and the fault policy."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("capsim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
