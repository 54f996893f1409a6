"""Tests of emulator/check/values.py: values equal as Clojure's = says, and shown so."""

import copy
import pickle
import subprocess
import sys

import pytest

from emulator.check.values import Exact, Keyword, clojure_key, freeze, show


def test_a_keyword_equals_only_the_same_keyword():
    """Keyword("a") is :a: equal to another :a, never to the string "a" (either way round) nor to :b."""
    a = Keyword("a")
    assert a == Keyword("a") and hash(a) == hash(Keyword("a"))
    assert a != "a" and "a" != a and a != Keyword("b") and a != ":a"  # noqa: SIM300  (both ways round: str.__eq__ first)
    assert {a: 1}.get("a") is None and {"a": 1}.get(a) is None and len({a, "a", Keyword("a")}) == 2


def test_a_keyword_survives_copies_and_pickles():
    """A copied, deep-copied or unpickled keyword is the same keyword (a checker may run in another process)."""
    a = Keyword("a")
    assert copy.copy(a) == copy.deepcopy(a) == pickle.loads(pickle.dumps(a)) == a


def test_a_keywords_hash_is_the_same_in_every_process():
    """Not a string's hash, which follows PYTHONHASHSEED: two processes with different seeds agree."""
    code = "from emulator.check.values import Keyword; print(hash(Keyword('timed-out')))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": ":".join(sys.path)},
            text=True,
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(seen) == 1


def test_frozen_keywords_and_strings_differ():
    """freeze keeps :a apart from "a", alone, in a vector and as a map's key."""
    k = Keyword
    assert freeze(k("a")) != freeze("a")
    assert freeze([k("a"), 1]) != freeze(["a", 1]) and freeze([k("a"), 1]) == freeze([k("a"), 1])
    assert freeze({k("a"): 1}) != freeze({"a": 1})


@pytest.mark.parametrize(
    "value, text",
    [
        (Keyword("a"), ":a"),
        ("a", '"a"'),
        ([Keyword("a"), "a", 1.0, True, None], '[:a, "a", 1.0, true, null]'),
        (freeze([Keyword("x"), [1, Keyword("y")]]), "[:x, [1, :y]]"),
        ({"k": Keyword("v")}, '{"k": :v}'),
        ({Keyword("k"): 1}, "{:k: 1}"),
        ([1, "x"], '[1, "x"]'),
    ],
)
def test_show_prints_a_keyword_with_its_colon_and_a_string_quoted(value, text):
    """Explanations tell :a from "a"; a value without a keyword prints as JSON, as before."""
    assert show(value) == text


def test_clojure_key_tells_numbers_bools_and_floats_apart():
    """1, 1.0 and true are three keys (Clojure's =), in vectors and maps too; other keys come back as they are."""
    keys = [clojure_key(k) for k in (1, 1.0, True, [1, True], [1, 1], {"a": 1.0}, {"a": 1})]
    assert len({show(k) for k in keys}) == len(keys)
    assert keys[0] != keys[1] != keys[2] != keys[0] and keys[3] != keys[4] and keys[5] != keys[6]
    assert clojure_key(1) == 1 and clojure_key("a") == "a" and clojure_key(Keyword("a")) == Keyword("a")
    assert clojure_key(2.5) == Exact(2.5) and show(clojure_key([1.0, False])) == "[1.0, false]"
