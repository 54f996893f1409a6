"""capsim: the command line that composes the emulator, the protocols and the fault policy."""

__all__ = ["__version__"]


def __getattr__(name: str):
    # Looked up on first use: importlib.metadata takes a tenth of a second to import, and
    # `capsim` must reach its Ctrl-C handler (capsim.cli.main) as early as it can.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("capsim")
        except PackageNotFoundError:  # running from a source tree that was never installed
            return "0.0.0+unknown"
    raise AttributeError(f"module 'capsim' has no attribute {name!r}")
