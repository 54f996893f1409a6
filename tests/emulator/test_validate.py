"""The one validation path: what counts as a number, an int, positive seconds, a known node."""

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from emulator import ConfigError
from emulator.validate import is_int, is_number, is_timeout, positive_seconds, timeout_error, unknown_node, whole

# Small enough that math.isfinite (in the old hand-written checks) does not overflow.
numbers = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
)
others = st.one_of(
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.fractions(),
    st.decimals(allow_nan=False),
    st.complex_numbers(),
    st.lists(st.integers(), max_size=2),
)
anything = st.one_of(numbers, others)
bounds = st.one_of(st.none(), st.floats(allow_nan=False), st.integers(min_value=-5, max_value=5))


def _old_number(v):
    return not (isinstance(v, bool) or not isinstance(v, (int, float)))


def _old_int(v):
    return not (isinstance(v, bool) or not isinstance(v, int))


# Each hand-written check the module replaced, beside the call that replaced it.
REPLACED = [
    (lambda v: _old_number(v), lambda v: is_number(v)),
    (lambda v: _old_number(v) and 0 < v < math.inf, lambda v: is_number(v, gt=0, lt=math.inf)),
    (lambda v: _old_number(v) and v > 0, lambda v: is_number(v, gt=0)),
    (lambda v: _old_number(v) and v >= 0, lambda v: is_number(v, ge=0)),
    (lambda v: _old_number(v) and math.isfinite(v), lambda v: is_number(v, finite=True)),
    (lambda v: _old_number(v) and v > 0 and math.isfinite(v), lambda v: is_number(v, gt=0, finite=True)),
    (lambda v: _old_number(v) and not math.isnan(v), lambda v: is_number(v, ge=-math.inf)),
    (lambda v: _old_number(v) and v == v, lambda v: is_number(v, ge=-math.inf)),
    (lambda v: _old_number(v) and v >= 0 and not math.isinf(v), lambda v: is_number(v, ge=0, lt=math.inf)),
    (lambda v: _old_number(v) and 0 <= v <= 1, lambda v: is_number(v, ge=0, le=1)),
    (lambda v: _old_number(v) and 0 < v < 1, lambda v: is_number(v, gt=0, lt=1)),
    (lambda v: _old_number(v) and 0 <= v < 1, lambda v: is_number(v, ge=0, lt=1)),
    (lambda v: _old_int(v), lambda v: is_int(v)),
    (lambda v: _old_int(v) and v >= 1, lambda v: is_int(v, ge=1)),
    (lambda v: _old_int(v) and not v < 0, lambda v: is_int(v, ge=0)),
    (lambda v: _old_int(v) and 1 <= v <= 7, lambda v: is_int(v, ge=1, le=7)),
    (lambda v: _old_int(v) and 0 <= v < 7, lambda v: is_int(v, ge=0, lt=7)),
]


@given(anything, st.sampled_from(range(len(REPLACED))))
def test_each_call_accepts_what_the_check_it_replaced_accepted(value, case):
    """No behaviour change: every replaced hand-written check and its is_number/is_int call agree on every value."""
    old, new = REPLACED[case]
    assert new(value) == old(value)


@given(st.booleans(), bounds, bounds, bounds, bounds, st.booleans())
def test_a_bool_is_never_a_number(value, gt, ge, lt, le, finite):
    """True and False are refused whatever the bounds, though Python makes bool an int."""
    assert not is_number(value, gt=gt, ge=ge, lt=lt, le=le, finite=finite)
    assert not is_int(value, gt=gt, ge=ge, lt=lt, le=le)


def test_a_bool_seed_is_a_mistake_not_seed_one():
    """Simulation(seed=True) is refused, not run as seed 1; so is True as an interval of seconds."""
    with pytest.raises(ConfigError, match="seed must be an int, got True"):
        em.Simulation(seed=True)
    with pytest.raises(ConfigError, match="call_every needs an interval of seconds > 0, got True"):
        em.Simulation(seed=1).loop.call_every(True, print)


@given(others.filter(lambda v: not isinstance(v, bool)))
def test_things_that_are_not_int_or_float_are_refused(value):
    """Strings, None, Fraction, Decimal, complex and lists are not numbers, even with no bound."""
    assert not is_number(value) and not is_int(value)


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_ge_and_le_include_the_bound_gt_and_lt_exclude_it(value, bound):
    """ge/le are inclusive, gt/lt exclusive: at the bound itself only the inclusive ones pass."""
    assert is_number(value, ge=bound) == (value >= bound)
    assert is_number(value, gt=bound) == (value > bound)
    assert is_number(value, le=bound) == (value <= bound)
    assert is_number(value, lt=bound) == (value < bound)
    assert is_number(bound, ge=bound) and is_number(bound, le=bound)
    assert not is_number(bound, gt=bound) and not is_number(bound, lt=bound)


@given(bounds, bounds, bounds, bounds)
def test_nan_is_refused_by_any_bound(gt, ge, lt, le):
    """NaN passes the type check alone, and fails as soon as one bound or finite is asked."""
    nan = float("nan")
    assert is_number(nan)
    given_bounds = {k: v for k, v in {"gt": gt, "ge": ge, "lt": lt, "le": le}.items() if v is not None}
    assert is_number(nan, **given_bounds) == (not given_bounds)
    assert not is_number(nan, finite=True)


@given(st.sampled_from([math.inf, -math.inf]))
def test_infinity_passes_unless_a_bound_or_finite_excludes_it(inf):
    """A bound that does not exclude infinity takes it; finite=True and lt/gt at infinity do not."""
    assert is_number(inf) and not is_number(inf, finite=True)
    assert is_number(math.inf, gt=0) and not is_number(math.inf, gt=0, lt=math.inf)
    assert is_number(-math.inf, lt=0) and not is_number(-math.inf, gt=-math.inf)


@given(st.integers())
def test_any_int_is_a_finite_number_without_overflow(value):
    """An int of any size is finite (compared, not converted to float, so 10**400 raises nothing)."""
    assert is_number(value, finite=True) and is_int(value)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_is_never_an_int_even_when_whole(value):
    """is_int refuses 2.0: a count given as a float is a mistake."""
    assert not is_int(value)


@given(st.floats(min_value=0, exclude_min=True, allow_infinity=False) | st.integers(min_value=1))
def test_positive_seconds_returns_the_value_unchanged(value):
    """A positive finite number is returned as given (an int stays an int)."""
    result = positive_seconds("timeout", value)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("value", [0, -1, 0.0, math.inf, float("nan"), True, "1", None])
def test_positive_seconds_refuses_with_the_label_and_value(value):
    """The message names the setting and the value, word for word as the modules always wrote it; for a bool
    it says what to pass instead, as timeout_error does."""
    with pytest.raises(ConfigError) as caught:
        positive_seconds("Gateway timeout", value)
    hint = "; pass a number of seconds such as 1.0 (a bool is not one)" if value is True else ""
    assert str(caught.value) == f"Gateway timeout must be a positive number of seconds, got {value!r}{hint}"


@given(st.integers(min_value=-3, max_value=3), st.integers(min_value=-3, max_value=3))
def test_whole_takes_ints_from_low_up(value, low):
    """whole() returns an int >= low and refuses anything below it, with the same message."""
    if value >= low:
        assert whole("window", value, low) == value
    else:
        with pytest.raises(ConfigError, match=rf"^window must be an int >= {low}, got {value}$"):
            whole("window", value, low)


@pytest.mark.parametrize("value", [1.0, True, "2", None])
def test_whole_refuses_what_is_not_an_int(value):
    """A float, a bool, a string or None is not a count."""
    with pytest.raises(ConfigError, match="must be an int >= 1"):
        whole("queue_limit", value)


def test_unknown_node_writes_the_four_messages_word_for_word():
    """The simulation, network, real cluster and http transport messages, each from this one function."""
    assert str(unknown_node("zz", {"n1": 0, "n0": 1})) == "unknown node 'zz'; known nodes: n0, n1"
    assert str(unknown_node("zz", [])) == "unknown node 'zz'; known nodes: none yet"
    network = unknown_node("zz", ["n0"], hint="Add it with sim.add_node first")
    assert str(network) == "unknown node 'zz'; known nodes: n0. Add it with sim.add_node first"
    assert str(unknown_node("n9", [], empty="none")) == "unknown node 'n9'; known nodes: none"
    http = unknown_node("n9", ["b", "a"], who="n1 knows", empty="none", hint="Give it with --peer NAME=URL")
    assert str(http) == "unknown node 'n9'; n1 knows: a, b. Give it with --peer NAME=URL"
    assert isinstance(http, ConfigError) and isinstance(http, ValueError)


@pytest.mark.parametrize(
    ("value", "ok"),
    [(None, True), (0, True), (0.25, True), (Fraction(1, 2), True), (1e300, True), (math.inf, True)]
    + [(True, False), (False, False), (-1, False), (math.nan, False), ("1", False), ([1], False)],
)
def test_is_timeout_takes_none_or_seconds_from_zero_and_no_bool(value, ok):
    """A timeout is None or any number >= 0 (a Fraction, inf); True compares as 1 but is no second."""
    assert is_timeout(value) is ok


def test_timeout_error_tells_a_bool_to_be_seconds():
    """The message names what was passed; for a bool it says to pass a number of seconds instead."""
    assert str(timeout_error("rpc timeout", -1)) == "rpc timeout must be a number of seconds >= 0 or None, got -1"
    assert str(timeout_error("rpc timeout", True)) == (
        "rpc timeout must be a number of seconds >= 0 or None, got True; pass a number of seconds such as 1.0 "
        "(a bool is not one)"
    )
