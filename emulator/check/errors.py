"""Errors raised by the checkers and the history readers.

Everything here is a ``ValueError``: a bad history is bad input, and callers
(the command line above all) catch it as such and print it without a
traceback.

    CheckError(ValueError)          base of every checker error
    ├── HistoryFormatError          a file or op list that is not a history
    ├── EdnError                    text that is not in capsim's EDN subset
    └── ModelError                  an op the chosen model cannot interpret

``check`` stays standard-library only and imports nothing else from
``emulator``, so this hierarchy stands alone; the kernel may re-parent
``CheckError`` under its own base later without changing these names.
"""

from __future__ import annotations


class CheckError(ValueError):
    """Base class of every error the ``emulator.check`` package raises."""


class EdnError(CheckError):
    """Text that does not parse as the EDN subset the readers understand.

    Args:
        message: what was wrong, e.g. ``"unterminated string"``.
        column: 1-based column in the parsed text where it went wrong.
    """

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.reason = message
        self.column = column


class HistoryFormatError(CheckError):
    """A history that cannot be read: names the file, line, what was found and what was expected.

    Args:
        path: the file (or ``"<history>"`` for an in-memory op list).
        line: 1-based line number, or the op's position for an op list.
        found: a short excerpt of the offending input.
        expected: what a valid history has there.
    """

    def __init__(self, path: object, line: int | None, found: str, expected: str) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        excerpt = found if len(found) <= 80 else found[:77] + "..."
        super().__init__(f"{where}: expected {expected}, found {excerpt}")
        self.path = str(path)
        self.line = line
        self.found = found
        self.excerpt = excerpt  # ``found``, cut to 80 characters
        self.expected = expected


class ModelError(CheckError):
    """An operation or model name the linearizability checker cannot interpret."""
