"""Fault parameters as plain data: each check names the key, what it found and what it expected."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from faults.spec import (
    ParamError,
    check_count,
    check_names,
    check_number,
    check_probability,
    distribution,
    distribution_spec,
)

values = st.one_of(
    st.integers(min_value=-10, max_value=10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)
bound = st.one_of(st.none(), st.integers(min_value=-3, max_value=3).map(float))


@given(values, bound, bound, st.booleans())
def test_check_number_takes_finite_numbers_within_the_bounds_and_nothing_else(value, low, high, strict_low):
    """Accepted exactly when it is an int or float (not a bool), finite, above low (strictly if asked), <= high."""
    expected = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (low is None or (value > low if strict_low else value >= low))
        and (high is None or value <= high)
    )
    try:
        got = check_number("rate", value, low=low, high=high, strict_low=strict_low)
    except ParamError as exc:
        assert not expected
        assert exc.key == "rate" and exc.found is value
    else:
        assert expected and got == value and type(got) is float


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({}, True, "rate: expected a number, found true"),
        ({}, float("nan"), "rate: expected a number, found nan"),
        ({"low": 0.0}, -1, "rate: expected a number >= 0, found -1"),
        ({"low": 0.0, "strict_low": True}, 0, "rate: expected a number > 0, found 0"),
        ({"low": 0.0, "high": 1.0}, 1.5, "rate: expected a number >= 0 and <= 1, found 1.5"),
        ({"low": -1.0, "strict_low": True}, "x", "rate: expected a number > -1, found 'x'"),
    ],
)
def test_check_number_says_what_it_expected(kwargs, value, message):
    """The message is the key, the bounds in words and the value as a scenario file would write it."""
    with pytest.raises(ParamError) as caught:
        check_number("rate", value, **kwargs)
    assert str(caught.value) == message


@given(st.one_of(st.integers(min_value=-3, max_value=8), st.booleans(), st.floats(0, 8)), st.none() | st.just(5))
def test_check_count_takes_whole_numbers_from_low_to_high(value, high):
    """An int in [1, high] passes unchanged; a bool or a float, even 2.0, is refused, with the range in words."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1 and (high is None or value <= high)
    if ok:
        assert check_count("count", value, high=high) == value
    else:
        bound = "between 1 and 5" if high is not None else ">= 1"
        with pytest.raises(ParamError, match=f"^count: expected a whole number {bound}, found "):
            check_count("count", value, high=high)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.booleans())
def test_a_probability_is_a_number_from_zero_to_one(value):
    """0 and 1 included; booleans, NaN and anything outside refused."""
    if not isinstance(value, bool) and 0.0 <= value <= 1.0:
        assert check_probability("loss", value) == value
    else:
        with pytest.raises(ParamError, match=r"^loss: expected a number >= 0 and <= 1"):
            check_probability("loss", value)


def test_node_names_come_back_sorted_and_bad_lists_are_refused():
    """A list of distinct non-empty names is sorted; a string, an empty list, a repeat or a blank name is not one."""
    assert check_names("nodes", ["n2", "n0"]) == ["n0", "n2"]
    for bad in ("n1", [], ["n1", "n1"], ["n1", ""], [1], None):
        with pytest.raises(ParamError, match="a non-empty list of distinct node names"):
            check_names("nodes", bad)


def test_a_long_value_is_cut_and_a_nested_key_gets_its_prefix():
    """A value's repr over 80 characters ends in '...'; under() puts the section in front of the key."""
    error = ParamError("nodes", ["n" * 50, "m" * 50], "names")
    found = str(error).split("found ")[1]
    assert len(found) == 80 and found.endswith("...")
    assert str(ParamError("loss", True, "a number").under("network")) == "network.loss: expected a number, found true"


specs = st.one_of(
    st.floats(0.0, 10.0),
    st.builds(lambda v: {"constant": v}, st.floats(0.0, 10.0)),
    st.builds(lambda a, b: {"uniform": [a, a + b]}, st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    st.builds(lambda m: {"exponential": m}, st.floats(0.001, 10.0)),
    st.builds(lambda m, s: {"lognormal": [m, s]}, st.floats(0.001, 1.0), st.floats(0.0, 3.0)),
    st.builds(lambda s, a: {"pareto": [s, a]}, st.floats(0.001, 1.0), st.floats(0.1, 5.0)),
    st.builds(lambda s, a: {"pareto": [s, a, s * 100]}, st.floats(0.001, 1.0), st.floats(0.1, 5.0)),
)


@given(specs)
def test_a_distribution_spec_round_trips(spec):
    """distribution_spec(distribution(spec)) gives the spec back ({constant = x} comes back as x)."""
    expected = spec["constant"] if isinstance(spec, dict) and "constant" in spec else spec
    assert distribution_spec(distribution(spec)) == expected


@pytest.mark.parametrize(
    "spec", [True, {"uniform": [0.1, True]}, {"exponential": [1, 2]}, {"normal": 1}, {"uniform": "a"}, [0.1]]
)
def test_a_bad_distribution_spec_names_the_forms_it_takes(spec):
    """A bool, a wrong arity, an unknown name or a text argument is refused with the list of forms."""
    with pytest.raises(ParamError, match=r"^latency: expected seconds, or a table with one of constant = S"):
        distribution(spec)


def test_a_distribution_that_refuses_its_parameters_says_why():
    """Parameters of the right shape that the distribution refuses give its own reason."""
    with pytest.raises(ParamError, match=r"valid uniform parameters \(.*\)"):
        distribution({"uniform": [2.0, 1.0]})
    assert isinstance(distribution("exponential:5ms"), em.Exponential)
