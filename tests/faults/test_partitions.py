"""faults.partitions: the ``groups`` shape, validated by the kernel's one constructor, in the fault policy's words."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from faults import DIRECTIONS, SHAPES, ParamError, cut
from faults.partitions import min_servers

NODES = ["n0", "n1", "n2", "n3"]
SHAPE = "groups: expected two or more non-empty lists of node names, e.g. [['n0'], ['n1', 'n2']], found "
NAMES = "groups: expected distinct server names from n0, n1, n2, n3, found "


def _groups(groups: object) -> em.ConfigError:
    with pytest.raises(ParamError) as caught:
        cut("groups", NODES, random.Random(0), groups=groups)  # type: ignore[arg-type]  (bad input on purpose)
    return caught.value


@pytest.mark.parametrize("groups", [None, "n0", [["n0"]], [["n0"], []], [["zz"], []], [["n0"], "n1"]])
def test_groups_that_are_not_two_lists_of_names_say_what_to_write(groups):
    assert str(_groups(groups)) == SHAPE + repr(groups)


@pytest.mark.parametrize("groups", [[["zz"], ["n0"]], [["n0", "n0"], ["n1"]], [["n0"], ["n1", "n0"]], [[1], ["n0"]]])
def test_unknown_or_repeated_names_list_the_servers(groups):
    error = _groups(groups)
    assert str(error) == NAMES + repr(groups)
    assert error.key == "groups" and error.found == groups


def test_groups_become_sorted_sides_and_one_kernel_call():
    made = cut("groups", NODES, random.Random(0), groups=[["n3", "n0"], ["n1"]])
    assert made.sides == {"group0": ["n0", "n3"], "group1": ["n1"]}
    assert made.calls == [("partition", (["n0", "n3"], ["n1"]))]


@st.composite
def _shapes(draw):
    """A shape, the servers it splits (maybe too few), a direction it takes, a primary and groups."""
    shape = draw(st.sampled_from(SHAPES))
    n = draw(st.integers(1, 9))
    nodes = [f"n{i}" for i in range(n)]
    direction = "both" if shape == "majorities-ring" else draw(st.sampled_from(DIRECTIONS))
    primary = draw(st.sampled_from(nodes))
    labels = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    groups = [[node for node, label in zip(nodes, labels, strict=True) if label == g] for g in range(4)]
    return shape, nodes, direction, primary, [g for g in groups if g]


@settings(max_examples=400, deadline=None)
@given(drawn=_shapes(), seed=st.integers(0, 2**32 - 1))
def test_no_shape_ever_draws_an_empty_side_or_an_empty_kernel_group(drawn, seed):
    """Every shape on any number of servers either refuses (too few) or cuts non-empty, disjoint groups of them.

    The kernel takes ``partition([], [...])`` as a no-op, so a nemesis that drew an empty side would
    record a partition that cut nothing: none can.
    """
    shape, nodes, direction, primary, groups = drawn
    try:
        made = cut(shape, nodes, random.Random(seed), direction, primary, groups)
    except ParamError:
        assert len(nodes) < min_servers(shape) or (shape == "groups" and len(groups) < 2)
        return
    assert len(nodes) >= min_servers(shape)
    sides = list(made.sides.values())
    assert all(sides) and sorted(n for side in sides for n in side) == (nodes if sides else [])
    assert made.calls and all(group for _, groups_ in made.calls for group in groups_)
    assert made.grudge and set(made.grudge) <= set(nodes)
