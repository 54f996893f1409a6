"""Cut rules and probabilities, shared by the simulated network and the real transport."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator import ConfigError
from emulator.cuts import Groups, Isolate, OneWay, from_json, isolate, partition, partition_oneway, probability


def _names(group):
    if isinstance(group, str):
        raise ConfigError(f"not a group: {group!r}")
    return list(group)


def test_each_kind_of_cut_blocks_what_it_says():
    """groups cut across sides (not within, not for outsiders); oneway cuts one way; isolate both ways."""
    groups = partition([["a"], ["b"]], _names, "e.g.")
    assert groups.blocks("a", "b") and groups.blocks("b", "a")
    assert not groups.blocks("a", "a") and not groups.blocks("a", "zz")
    oneway = partition_oneway(["a"], ["b"])
    assert oneway.blocks("a", "b") and not oneway.blocks("b", "a")
    cut = isolate("a")
    assert cut.blocks("a", "x") and cut.blocks("x", "a") and not cut.blocks("x", "y")
    assert not cut.blocks("a", "a")


def test_cuts_are_frozen_values():
    """A cut cannot change once made, and two cuts of the same shape are equal (the derived lookups aside)."""
    cut = partition([["a"], ["b", "c"]], _names, "e.g.")
    with pytest.raises(AttributeError):
        cut.groups = ()  # type: ignore[misc]  # the point: frozen
    assert cut == Groups((("a",), ("b", "c"))) and partition_oneway(["a", "a"], ["b"]) == OneWay(("a",), ("b",))


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([["a"]], "partition needs at least two groups, e.g. EXAMPLE"),
        ([["a"], ["b", "a"]], "node 'a' is in two groups of one partition"),
        (["a", ["b"]], "not a group: 'a'"),
    ],
)
def test_the_one_constructor_refuses_bad_groups_in_the_callers_words(groups, message):
    """Too few groups, a node on two sides, or the caller's own check failing: a ConfigError, word for word."""
    with pytest.raises(ConfigError) as info:
        partition(groups, _names, "EXAMPLE")
    assert str(info.value) == message


cut_strategy = st.one_of(
    st.lists(st.lists(st.sampled_from("abcdef"), min_size=1, unique=True), min_size=2, max_size=3)
    .filter(lambda gs: len({n for g in gs for n in g}) == sum(map(len, gs)))
    .map(lambda gs: partition(gs, _names, "")),
    st.builds(partition_oneway, st.lists(st.sampled_from("abc")), st.lists(st.sampled_from("def"))),
    st.sampled_from("abcdef").map(isolate),
)


@given(cut_strategy, st.sampled_from("abcdefg"), st.sampled_from("abcdefg"))
def test_a_cut_read_back_from_its_json_blocks_the_same_links(cut, src, dst):
    """to_json then from_json is the same cut: hosts given the JSON drop exactly what the controller drops."""
    ((action, payload),) = cut.to_json().items()
    again = from_json(action, payload)
    assert again == cut and again.blocks(src, dst) == cut.blocks(src, dst)
    assert isinstance(again, (Groups, OneWay, Isolate))


@pytest.mark.parametrize(
    ("action", "payload", "message"),
    [
        (
            "partition",
            {"groups": [["n1"]]},
            'partition needs at least two groups, e.g. {"groups": [["n1"], ["n2", "n3"]]}',
        ),
        ("partition", {"groups": [["n1"], "n2"]}, "each group must be a list of node names"),
        ("partition_oneway", {"src": "n1", "dst": ["n2"]}, "'src' must be a list of node names"),
        ("isolate", {"name": ""}, "'name' must be a node name, got ''"),
        ("nuke", {}, "unknown rule kind 'nuke'"),
    ],
)
def test_malformed_json_cuts_are_refused(action, payload, message):
    """Each mistake in a host's JSON gets its own message, naming the field."""
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        from_json(action, payload)


@pytest.mark.parametrize("value", [-0.1, 1.01, float("nan"), "half", None])
def test_a_probability_outside_zero_to_one_is_refused(value):
    """probability() names the setting and the bad value."""
    with pytest.raises(ConfigError, match="loss must be a probability between 0 and 1"):
        probability("loss", value)
    assert probability("loss", True) == 1.0 and probability("loss", 0) == 0.0
