"""What tomllib found wrong, in its author's words (faults/syntax.py); the scenario loader's use is in test_scenario."""

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faults.syntax import Problem, explain


def _explained(text: str) -> Problem:
    with pytest.raises(ValueError) as caught:
        tomllib.loads(text)
    return explain(caught.value, text)


@pytest.mark.parametrize(
    "text, line, found, expected",
    [
        ("x = 1\n[x.y]\nz = 1\n", 2, "[x.y]", "x once: line 1 sets it to 1, and this line would make it a table"),
        ("a.b = 1\n[a]\nc = 1\n", 2, "[a]", "a defined one way: line 1 already makes it a table, key by key"),
        # the same name twice wins over a key of the same table further up
        ("[a.b]\nx = 1\n[a]\ny = 1\n[a]\n", 5, "[a]", "the [a] table once (it is also at line 3)"),
        ('[a]\n"b.c" = 1\n"b.c" = 2\n', 3, '"b.c" = 2', "a.b.c set once (line 2 sets it too)"),  # a quoted key
        ("[a]  # the first\nk = 1\n[a]\n", 3, "[a]", "the [a] table once (it is also at line 1)"),  # a comment
        ("x = tru\n", 1, "x = tru", 'a string in quotes: x = "tru"'),
        ("x = 2s\n", 1, "x = 2s", "valid TOML (Expected newline or end of document after a statement, at column 6)"),
    ],
)
def test_each_mistake_is_explained_at_its_line(text, line, found, expected):
    """The line tomllib stopped at, its text, and what to write there."""
    problem = _explained(text)
    assert (problem.line, problem.found) == (line, found)
    assert problem.expected.startswith(expected), problem.expected


def test_a_mistake_at_the_end_of_the_document_has_no_line():
    """An array left open ends the document: no line to name, tomllib's reason."""
    assert _explained("x = [1,\n") == Problem(None, "Invalid value", "valid TOML")


def test_a_number_of_too_many_digits_says_so():
    """tomllib's own ValueError (not a TOMLDecodeError): Python's limit on an int's digits."""
    assert _explained("x = " + "9" * 5000) == Problem(None, "a number of more than 4,300 digits", "valid TOML")


_LINES = st.sampled_from(
    [
        "[a]",
        "[a.b]",
        "[[a]]",
        "[[a.b]]",
        "a = 1",
        "a.b = 2",
        "b = { c = 1 }",
        'b.c = "x"',
        "c = [1, 2]",
        "c = x",
        "[b]",
        "# note",
        "",
        "d = ",
        '"q.r" = 1',
        "[a",
        "a = {",
    ]
)


@given(st.lists(_LINES, min_size=1, max_size=8))
def test_any_text_tomllib_refuses_is_explained_at_one_of_its_lines(lines):
    """Property: for any text of these lines that is no TOML, explain answers (never raises), at a line of the
    text or at none, with the text of that line."""
    text = "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = explain(exc, text)
        assert problem.line is None or problem.found == lines[problem.line - 1].strip()
        assert problem.expected
