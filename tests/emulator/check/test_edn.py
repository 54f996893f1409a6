"""Tests of emulator/check/edn.py: the EDN subset reader."""

import pytest

from emulator.check.edn import parse_edn
from emulator.check.errors import EdnError
from emulator.check.values import Keyword


@pytest.mark.parametrize(
    "text, value",
    [
        ("nil", None),
        ("true", True),
        ("false", False),
        ("42", 42),
        ("-7", -7),
        ("+3", 3),
        ("42N", 42),
        ("1.5", 1.5),
        ("-2e3", -2000.0),
        ("1.5M", 1.5),
        (":ok", Keyword("ok")),
        (":timed-out", Keyword("timed-out")),
        (":jepsen/nemesis", Keyword("jepsen/nemesis")),
        ('"x 0 1 y"', "x 0 1 y"),
        ("some-symbol", "some-symbol"),
    ],
)
def test_scalars_parse_to_plain_python_values(text, value):
    """Each scalar form reads as the plain Python value; a keyword as a Keyword of its name."""
    assert parse_edn(text) == value


def test_string_escapes_are_decoded():
    """Quotes, backslashes, newlines, tabs and unicode escapes inside strings decode."""
    assert parse_edn(r'"a\"b\\c\nd\te\u00e9"') == 'a"b\\c\nd\te\u00e9'


def test_collections_nest():
    """Vectors and lists become lists, maps dicts, all nesting freely."""
    assert parse_edn('[1 (2 3) {:a [nil "s"]}]') == [1, [2, 3], {Keyword("a"): [None, "s"]}]


def test_a_jepsen_op_line_becomes_a_dict():
    """A Jepsen history line reads as a dict keyed by keywords."""
    line = '{:process 0, :type :invoke, :f :get, :key "3", :value nil}'
    k = Keyword
    assert parse_edn(line) == {
        k("process"): 0,
        k("type"): k("invoke"),
        k("f"): k("get"),
        k("key"): "3",
        k("value"): None,
    }


@pytest.mark.parametrize("text", ['"a"', '":a"', "a", "1", ":b", "nil"])
def test_a_keyword_is_never_equal_to_its_string_or_name(text):
    """:a is not "a" nor the symbol a nor anything but :a, as Clojure's = says; both ways round, and as a dict key."""
    keyword, other = parse_edn(":a"), parse_edn(text)
    assert keyword != other and other != keyword and not keyword == other  # noqa: SIM201
    assert {keyword: 1}.get(other) is None and keyword == parse_edn(":a") and hash(keyword) == hash(Keyword("a"))


def test_sets_become_lists_in_a_canonical_order():
    """A set reads as a deduplicated list whose order does not depend on the source order."""
    assert parse_edn("#{3 1 2 1}") == parse_edn("#{1 2 3}") == [1, 2, 3]


def test_collections_as_map_keys_become_tuples():
    """A vector used as a map key is made hashable."""
    assert parse_edn("{[1 2] :x}") == {(1, 2): Keyword("x")}


def test_comments_discards_and_tags_are_skipped():
    """Comments and #_ forms vanish; a tagged literal keeps its value."""
    assert parse_edn('[1 ; one\n #_ 2 3 #inst "2020-01-01"]') == [1, 3, "2020-01-01"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('"open', "unterminated string"),
        ("[1 2", "never closed"),
        ("[1 2)", "closed by"),
        ("1 2", "after the value"),
        ("]", "unbalanced"),
        ("{:a}", "even number"),
        ("", "no value"),
        (":", "keyword needs a name"),
        (r'"\q"', "unknown escape"),
        ("12abc", "unsupported token"),
        ("#_", "no value after it"),
        ("[" * 5000, "nested too deeply|never closed"),
    ],
)
def test_malformed_text_raises_edn_error_saying_what_is_wrong(text, message):
    """Each kind of malformed input names its problem."""
    with pytest.raises(EdnError, match=message):
        parse_edn(text)


def test_edn_error_reports_the_column():
    """The error carries the 1-based column of the problem."""
    with pytest.raises(EdnError, match="column 5") as info:
        parse_edn("[1 ]]")
    assert info.value.column == 5
