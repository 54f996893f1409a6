"""Tests of emulator/transport/wire.py: envelopes and latency specs as JSON."""

import ast
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from emulator.transport import WireError, encode_envelopes, parse_envelopes
from emulator.transport.wire import MAX_BATCH, MAX_DEPTH, distribution_from_json, distribution_to_json

seconds = st.floats(0, 10, allow_nan=False)


def test_one_envelope_and_a_batch_parse_to_messages():
    """A bare envelope and a list both become Messages, in order, bodies intact."""
    one = parse_envelopes(b'{"src": "c1", "dest": "n1", "body": {"type": "read", "msg_id": 3}}', "n1")
    assert [(m.src, m.dest, m.body) for m in one] == [("c1", "n1", {"type": "read", "msg_id": 3})]
    batch = [{"src": "n2", "dest": "n1", "body": {"type": "t", "i": i}} for i in range(3)]
    assert [m.body["i"] for m in parse_envelopes(json.dumps(batch), "n1")] == [0, 1, 2]


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "src": st.text(min_size=1),
                "dest": st.just("n1"),
                "body": st.fixed_dictionaries({"type": st.text(min_size=1), "v": st.integers()}),
            }
        ),
        min_size=1,
        max_size=5,
    )
)
def test_encode_then_parse_is_the_identity(envelopes):
    """What the sender encodes, the receiver parses back unchanged."""
    parsed = parse_envelopes(encode_envelopes(envelopes), "n1")
    assert [m.to_json() for m in parsed] == envelopes


def test_a_batch_over_the_limit_is_refused():
    """More than MAX_BATCH envelopes in one request is a 400."""
    batch = [{"src": "a", "dest": "n1", "body": {"type": "t"}}] * (MAX_BATCH + 1)
    with pytest.raises(WireError, match="at most") as refused:
        parse_envelopes(json.dumps(batch), "n1")
    assert refused.value.status == 400


def test_deep_nesting_is_a_400_not_a_crash():
    """A body nested beyond the parser's depth is refused like any malformed JSON."""
    with pytest.raises(WireError) as refused:
        parse_envelopes(b"[" * 100_000 + b"]" * 100_000, "n1")
    assert refused.value.status == 400


@given(
    st.one_of(
        seconds.map(em.Constant),
        st.tuples(seconds, seconds).map(lambda t: em.Uniform(min(t), max(t))),
        st.floats(0.001, 5).map(em.Exponential),
        st.tuples(st.floats(0.001, 5), st.floats(0, 2)).map(lambda t: em.LogNormal(*t)),
        st.tuples(st.floats(0.001, 0.01), st.floats(1.1, 3), st.floats(0.1, 1)).map(lambda t: em.Pareto(*t)),
    )
)
def test_distributions_round_trip_through_json(dist):
    """A latency distribution sent as JSON comes back with the same parameters."""
    back = distribution_from_json(json.loads(json.dumps(distribution_to_json(dist))))
    assert type(back) is type(dist) and back.mean == pytest.approx(dist.mean)


@pytest.mark.parametrize("spec", [{"uniform": [2, 1]}, {"uniform": 3}, {"gamma": 1}, "1s", {"a": 1, "b": 2}, True])
def test_a_bad_latency_spec_is_a_config_error(spec):
    """Unknown kinds, wrong arguments and non-numbers are refused with what to send instead."""
    with pytest.raises(em.ConfigError):
        distribution_from_json(spec)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5e309", "123456789e999"])
def test_a_number_too_large_for_a_float_is_a_400(number):
    """JSON's 1e400 is inf to Python: no reply, no storage file can carry it back (a node storing it lost its whole
    storage at the next restart). It is refused with what to send instead."""
    raw = f'{{"src": "c1", "dest": "n1", "body": {{"type": "write", "value": {number}}}}}'
    with pytest.raises(WireError, match="too large for a float") as refused:
        parse_envelopes(raw, "n1")
    assert refused.value.status == 400 and "string" in refused.value.text


@given(
    st.lists(
        st.tuples(st.integers(-(10**6), 10**6), st.integers(-1000, 1000)).map(lambda t: f"{t[0]}e{t[1]}")
        | st.integers(0, 8).map(lambda n: "[" * n + "1" + "]" * n),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, MAX_DEPTH + 3),
)
def test_whatever_parses_can_be_sent_back_and_stored(literals, depth):
    """Every body parse_envelopes lets through (numbers of any exponent, nesting of any depth up to the limit)
    can travel again as JSON and be saved in a node's storage and read back, nested inside the storage's own
    levels: a request is refused at the door or it cannot break the node later."""
    value = "[" * depth + ", ".join(literals) + "]" * depth
    raw = f'{{"src": "c1", "dest": "n1", "body": {{"type": "write", "value": {value}}}}}'
    try:
        (message,) = parse_envelopes(raw, "n1")
    except WireError as refused:
        assert refused.status == 400
        return
    assert json.loads(encode_envelopes([message.to_json()])) == message.to_json()
    stored = {"data": {"k": message.body["value"]}, "applied": {"k": {"c1": [1, {"type": "write_ok"}]}}}
    assert ast.literal_eval(repr(stored)) == stored  # what FileStorage writes, and reads back


def test_a_body_nested_deeper_than_max_depth_is_a_400():
    """MAX_DEPTH levels of arrays and objects pass; one more is a 400 naming the limit (the parser's own limit, near
    1000, let through values a storage file cannot hold)."""
    inner = "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2)  # the envelope and its body are two levels
    ok = f'{{"src": "c1", "dest": "n1", "body": {{"type": "write", "value": {inner}}}}}'
    assert parse_envelopes(ok, "n1")[0].body["type"] == "write"
    deeper = ok.replace(inner, f"[{inner}]")
    with pytest.raises(WireError, match=f"nested deeper than {MAX_DEPTH}") as refused:
        parse_envelopes(deeper, "n1")
    assert refused.value.status == 400
