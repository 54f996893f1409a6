"""Cut rules and probabilities, shared by the simulated network and the real transport."""

import pytest

from emulator import ConfigError
from emulator.cuts import blocks, probability


def test_each_kind_of_cut_blocks_what_it_says():
    """groups cut across sides (not within, not for outsiders); oneway cuts one way; isolate both ways."""
    groups = ("groups", {"a": 0, "b": 1})
    assert blocks(groups, "a", "b") and blocks(groups, "b", "a")
    assert not blocks(groups, "a", "a") and not blocks(groups, "a", "zz")
    oneway = ("oneway", {"a": None}, {"b": None})
    assert blocks(oneway, "a", "b") and not blocks(oneway, "b", "a")
    isolate = ("isolate", "a")
    assert blocks(isolate, "a", "x") and blocks(isolate, "x", "a") and not blocks(isolate, "x", "y")
    assert not blocks(isolate, "a", "a")


@pytest.mark.parametrize("value", [-0.1, 1.01, float("nan"), "half", None])
def test_a_probability_outside_zero_to_one_is_refused(value):
    """probability() names the setting and the bad value."""
    with pytest.raises(ConfigError, match="loss must be a probability between 0 and 1"):
        probability("loss", value)
    assert probability("loss", True) == 1.0 and probability("loss", 0) == 0.0
