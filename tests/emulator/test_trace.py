"""The trace: records, their digest, and recorders that format a repeating record once."""

from hypothesis import given
from hypothesis import strategies as st

from emulator.trace import BATCH, Trace

_NAMES = st.text(min_size=1, max_size=6)  # quotes, backslashes and non-ASCII included


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=10**15), _NAMES, _NAMES, _NAMES), max_size=50))
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
    for t in range(BATCH * 2 + 7):
        record(t)
        lines.append(repr((t, "deliver", "a", "b", "ping")))
    assert trace.digest() == hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()


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
