"""faults.partitions: the ``groups`` shape, validated by the kernel's one constructor, in the fault policy's words."""

import random

import pytest

import emulator as em
from faults import ParamError, cut

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
