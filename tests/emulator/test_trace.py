"""The trace: records, their digest, and recorders that format a repeating record once."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.speedups import native
from emulator.trace import BATCH, BATCH_BYTES, Trace

_NAMES = st.text(min_size=1, max_size=6)  # quotes, backslashes and non-ASCII included


class Nanos(int):
    """An int subclass that formats itself otherwise: the recorder writes what the f-string writes."""

    def __format__(self, spec: str) -> str:
        return f"ns:{int(self)}"

    def __repr__(self) -> str:
        return f"ns:{int(self)}"


# times: the common ones, past 64 bits (the compiled recorder's other path), negative, and int subclasses
_TIMES = st.one_of(
    st.integers(min_value=0, max_value=10**15),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
    st.builds(Nanos, st.integers(min_value=0, max_value=10**9)),
)


@given(st.lists(st.tuples(_TIMES, _NAMES, _NAMES, _NAMES), max_size=50))
def test_a_recorder_adds_exactly_the_line_append_adds(records):
    """Property: recording through recorder() and through append() gives the same digest and events."""
    by_append, by_recorder = Trace(keep=True), Trace(keep=True)
    for time_ns, src, dest, kind in records:
        by_append.append((time_ns, "deliver", src, dest, kind))
        by_recorder.recorder("deliver", src, dest, kind)(time_ns)
    assert by_append.digest() == by_recorder.digest()
    assert by_append.events == by_recorder.events
    assert by_recorder.count == len(records)


def test_the_digest_does_not_depend_on_batching():
    """A digest over more records than one batch equals the sha256 of all their lines."""
    import hashlib

    trace = Trace()
    record = trace.recorder("deliver", "a", "b", "ping")
    lines = []
    for t in range(BATCH * 2 + 7):  # past two batches of lines, and a few dozen of BATCH_BYTES
        record(t)
        lines.append(repr((t, "deliver", "a", "b", "ping")))
        if t % 3 == 0:  # appends between the recorder's lines
            trace.append((t, "event", "é", "x", [t]))
            lines.append(repr((t, "event", "é", "x", [t])))
    assert trace.digest() == hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()
    assert trace.count == len(lines)


def test_a_record_is_fixed_when_appended():
    """Changing a value after it was recorded does not change the digest."""
    value = [1]
    changed, unchanged = Trace(), Trace()
    changed.append((0, "event", "n1", "x", value))
    value.append(2)
    unchanged.append((0, "event", "n1", "x", [1]))
    assert changed.digest() == unchanged.digest()


def test_what_is_appended_while_held_is_discarded():
    """held() leaves the digest, the count and the kept records as they were before the block."""
    trace, twin = Trace(keep=True), Trace(keep=True)
    for t in (trace, twin):
        t.append((1, "send", "a", "b"))
    record = trace.recorder("tick", "n1")
    with trace.held():
        for i in range(BATCH + 10):  # past a batch, so some of it was hashed inside the block
            record(i)
        assert trace.digest() != twin.digest()
    assert (trace.digest(), trace.count, trace.events) == (twin.digest(), twin.count, twin.events)
    trace.append((2, "send", "b", "a"))
    twin.append((2, "send", "b", "a"))
    assert trace.digest() == twin.digest()


@pytest.mark.skipif(native is None, reason="the compiled core is not in use")
def test_the_compiled_trace_hashes_once_its_buffer_holds_batch_bytes():
    """The lines wait in one buffer of about BATCH_BYTES, however long the run: the rest is hashed."""
    trace = Trace()
    record = trace.recorder("deliver", "n00001", "n00002", "heartbeat")
    longest = len(repr((10**10, "event", "n00001", "x", 10**10))) + 1
    records = 0
    for t in range(10**9, 10**9 + 10 * BATCH_BYTES // longest):
        record(t)
        trace.append((t, "event", "n00001", "x", t))
        records += 2
        assert trace._buffer.size < BATCH_BYTES + longest
        assert trace.count + trace._buffer.lines == records
    assert trace.count >= records - BATCH_BYTES  # most of it was hashed on the way


@pytest.mark.skipif(native is None, reason="the compiled core is not in use")
def test_the_compiled_trace_buffer_refuses_what_is_not_a_line():
    with pytest.raises(ValueError, match="callable"):
        native.TraceBuffer(None, 1)
    with pytest.raises(ValueError, match="limit >= 1"):
        native.TraceBuffer(print, 0)
    with pytest.raises(TypeError, match="str line"):
        native.TraceBuffer(print, 10).add(b"bytes")


@pytest.mark.parametrize("time_ns", [0, 7, -1, -10, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**40])
def test_a_recorder_writes_a_time_at_the_edges_of_64_bits_as_repr_does(time_ns):
    by_append, by_recorder = Trace(), Trace()
    by_append.append((time_ns, "deliver", "a", "b", "ping"))
    by_recorder.recorder("deliver", "a", "b", "ping")(time_ns)
    assert by_append.digest() == by_recorder.digest()
