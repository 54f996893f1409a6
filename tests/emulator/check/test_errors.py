"""The checkers' errors: one ValueError hierarchy, and messages that name where and what."""

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator.check as check
from emulator.check.errors import CheckError, EdnError, HistoryFormatError, ModelError

CHECK_DIR = Path(check.__file__).parent


@pytest.mark.parametrize("cls", [EdnError, HistoryFormatError, ModelError])
def test_every_checker_error_is_a_check_error_and_a_value_error(cls):
    """The command line catches a bad history as ValueError: every class is one."""
    assert issubclass(cls, CheckError) and issubclass(cls, ValueError)


def test_the_package_exports_the_hierarchy():
    """emulator.check re-exports the four names, as the same classes."""
    assert (check.CheckError, check.EdnError, check.HistoryFormatError, check.ModelError) == (
        CheckError,
        EdnError,
        HistoryFormatError,
        ModelError,
    )


def test_an_edn_error_names_the_column_and_keeps_the_reason():
    """EdnError("unterminated string", 14) reads '... at column 14' and keeps both parts."""
    error = EdnError("unterminated string", 14)
    assert str(error) == "unterminated string at column 14"
    assert (error.reason, error.column) == ("unterminated string", 14)


def test_a_history_format_error_names_file_line_expected_and_found():
    """The message is 'path:line: expected X, found Y', and the parts stay readable as attributes."""
    error = HistoryFormatError(Path("h.jsonl"), 3, "{oops", "a JSON object per line")
    assert str(error) == "h.jsonl:3: expected a JSON object per line, found {oops"
    assert (error.path, error.line, error.found, error.expected) == ("h.jsonl", 3, "{oops", "a JSON object per line")


def test_a_history_format_error_without_a_line_names_the_path_only():
    """line=None: the message starts with the path alone."""
    assert str(HistoryFormatError("<history>", None, "7", "a list of ops")).startswith("<history>: expected")


@given(st.text(max_size=300))
def test_the_found_excerpt_is_at_most_80_characters_and_marks_a_cut(found):
    """A long offending input is cut to 77 characters and '...'; a short one is shown whole; .found keeps it all."""
    error = HistoryFormatError("f", 1, found, "x")
    shown = str(error).split(", found ", 1)[1]
    assert len(shown) <= 80
    assert shown == found if len(found) <= 80 else shown == found[:77] + "..."
    assert error.found == found


def test_the_check_package_imports_nothing_else_from_emulator():
    """emulator.check stands alone (standard library only): no module of it imports emulator outside check."""
    offenders = []
    for path in sorted(CHECK_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] == "emulator" and not n.startswith("emulator.check")
            ]
    assert offenders == []
