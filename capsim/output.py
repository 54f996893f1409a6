"""Where a command writes: checked before it starts, so a long run never ends in "cannot write".

Every command that takes ``--out`` calls ``writable_dir`` (or, for a single
file, ``writable_file``) before it runs anything: a path that is an existing
file, a directory it cannot create or write into, or a file's missing parent
is a ``UsageError`` (one line, exit 2) naming the path and what to give
instead. Nothing the user already has is removed or truncated by the check.

Every command prints its tables through ``console()``, a rich Console whose
reader going away (``capsim ... | head``) raises ``BrokenPipeError`` as
``print`` does, so ``capsim.cli.main`` ends the command quietly with 141;
rich's own default exits 1. rich is imported by the first console made, so
a sweep that forks its workers first does not import it before the fork.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capsim.cli import UsageError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "writable_dir", "writable_file"]


def console(**options: Any) -> Console:
    """``rich.console.Console(**options)`` whose broken pipe raises ``BrokenPipeError`` (see the module doc)."""
    return _console_type()(**options)


@functools.cache
def _console_type() -> type[Console]:
    from rich.console import Console

    class PipeConsole(Console):
        """rich documents on_broken_pipe as the method to override (its default exits 1)."""

        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return PipeConsole


def path_text(text: str) -> str:
    """An argparse type: a path, not an empty string (as an unset shell variable gives, ``--out "$DIR"``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r} (is a shell variable unset?)")
    return text


def path_of(text: str) -> Path:
    """``path_text``, as a Path (``Path("")`` would be the current directory)."""
    return Path(path_text(text))


def writable_dir(path, option: str = "--out") -> Path:
    """Make directory ``path`` if missing and prove it can be written to; returns it as a Path.

    Raises:
        UsageError: it is a file, or it cannot be made or written to.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{option} {out}: a file is there; give a directory (it is made if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".capsim-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {out}: cannot write there ({exc.strerror or exc})") from None
    return out


def writable_file(path, option: str = "--out") -> Path:
    """Prove file ``path`` can be written (its directory exists and takes files) without touching it.

    Raises:
        UsageError: it is a directory, its directory is missing, or it cannot be written.
    """
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {target}: a directory is there; give a file name")
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {target}: no directory {parent}; make it first or give another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"{option} {target}: cannot write there (permission denied)")
    return target
