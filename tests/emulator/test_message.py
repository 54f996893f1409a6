"""Message bodies: validated deep copies of JSON-compatible dicts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator import MessageError
from emulator.message import copy_body, fast_copy_body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_a_copy_is_equal_and_shares_no_mutable_object(fields):
    """Property: copy_body returns an equal body with no list or dict shared with the original."""
    body = {**fields, "type": "t"}
    copy = copy_body(body)
    assert copy == body

    def containers(value):
        if isinstance(value, (list, dict)):
            yield id(value)
            for item in value.values() if isinstance(value, dict) else value:
                yield from containers(item)

    assert not set(containers(copy)) & set(containers(body))


def test_tuples_become_lists_as_in_json():
    """A tuple travels as a list, as it would through JSON."""
    assert copy_body({"type": "t", "pair": (1, 2)}) == {"type": "t", "pair": [1, 2]}


@pytest.mark.parametrize(
    "body, message",
    [
        ([1, 2], "must be a dict"),
        ({"value": 1}, 'needs a non-empty string "type"'),
        ({"type": ""}, "non-empty"),
        ({"type": 3}, "string"),
        ({"type": "t", 1: "x"}, "keys must be strings"),
        ({"type": "t", "v": {"nested": {2: 3}}}, r"v.nested has key 2"),
        ({"type": "t", "v": float("nan")}, "no NaN or infinity"),
        ({"type": "t", "v": [1, {1, 2}]}, r"v\[1\] is a set"),
        ({"type": "t", "v": object()}, "JSON cannot carry"),
    ],
)
def test_bodies_json_cannot_carry_are_refused_with_the_path(body, message):
    """Each kind of bad body raises MessageError (a TypeError) naming where the problem is."""
    with pytest.raises(MessageError, match=message):
        copy_body(body)
    assert issubclass(MessageError, TypeError)


_anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: refused
    | st.text(max_size=4)
    | st.sampled_from([b"x", {1, 2}, object, 1j]),  # what JSON cannot carry
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=3) | st.integers(), children, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(st.text(max_size=4) | st.integers() | st.none(), _anything, max_size=5)
    | _anything
    | st.builds(lambda d, t: {**d, "type": t}, st.dictionaries(st.text(max_size=4), _anything, max_size=4), _anything)
)
def test_the_message_path_s_copy_is_copy_body_exactly(body):
    """Property: ``fast_copy_body`` (compiled when the C core runs) returns what ``copy_body`` returns,
    and raises the same MessageError with the same text for what it refuses."""
    try:
        expected = copy_body(body)
    except MessageError as error:
        with pytest.raises(MessageError) as caught:
            fast_copy_body(body)
        assert str(caught.value) == str(error)
    else:
        copy = fast_copy_body(body)
        assert copy == expected and type(copy) is dict and copy is not body
        assert list(copy) == list(expected)  # the same key order


_REFUSE = """
from emulator import MessageError
from emulator.message import copy_body
for bad in ({"alpha", "beta", "gamma", "delta"}, frozenset({"x", "y", "z"}), object(), [object]):
    try:
        copy_body({"type": "t", "v": bad})
    except MessageError as error:
        print(error)
"""


def test_the_refusal_names_the_value_the_same_way_in_every_process():
    """A set of strings or an object in a body: the error text (which can travel in an error reply, and so
    reach a history and a trace with bodies) shows no set order and no address, whatever PYTHONHASHSEED is."""
    import os
    import subprocess
    import sys

    texts = [
        subprocess.run(
            [sys.executable, "-c", _REFUSE],
            env=dict(os.environ, PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for seed in ("1", "2", "3", "4")
    ]
    assert len(set(texts)) == 1 and texts[0].count("\n") == 4
    assert "0x" not in texts[0] and "{'alpha', 'beta', 'delta', 'gamma'}" in texts[0]
