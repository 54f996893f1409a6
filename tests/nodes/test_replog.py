"""The replicated log's matching rule and the state machine it feeds."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from nodes.replog import NOOP, ReplicatedLog, StateMachine


def _write(value):
    return {"type": "write", "key": "x", "value": value}


def _log(*epochs) -> ReplicatedLog:
    log = ReplicatedLog({})
    for i, epoch in enumerate(epochs):
        log.append(epoch, _write(i))
    return log


def test_accept_appends_after_a_matching_predecessor():
    """Entries after a predecessor of the right epoch are appended; match is their last index."""
    log = _log(1, 1)
    assert log.accept(2, 1, [[2, _write("a")], [2, _write("b")]]) == (4, None)
    assert [epoch for epoch, _ in log.entries()] == [1, 1, 2, 2]


def test_accept_refuses_a_missing_or_mismatched_predecessor():
    """A gap or a predecessor of another epoch is refused, and nothing changes."""
    log = _log(1, 2)
    assert log.accept(5, 2, [[2, _write("a")]]) == (None, None)
    assert log.accept(2, 1, [[2, _write("a")]]) == (None, None)
    assert log.last_index == 2


def test_accept_truncates_only_at_a_conflict():
    """A conflicting entry cuts the log from there; the primary's entries replace the rest."""
    log = _log(1, 1, 1, 1)
    log.set_commit(3)
    assert log.accept(1, 1, [[1, _write(1)], [2, _write("new")]]) == (3, 3)
    assert [epoch for epoch, _ in log.entries()] == [1, 1, 2]
    assert log.commit == 2, "a commit index past the cut would claim entries nobody committed"


def test_a_late_duplicate_append_never_cuts_newer_entries():
    """An old append delivered again after newer ones matches, so the log keeps its tail."""
    log = ReplicatedLog({})
    first = [[1, _write("a")]]
    assert log.accept(0, 0, first) == (1, None)
    assert log.accept(1, 1, [[1, _write("b")], [1, _write("c")]]) == (3, None)
    assert log.accept(0, 0, first) == (1, None)
    assert log.last_index == 3


@settings(max_examples=100)
@given(
    st.lists(st.sampled_from([1, 3, 5]), max_size=6),
    st.integers(0, 6),
    st.lists(st.sampled_from([2, 4, 6]), max_size=4),
    st.integers(0, 6),
)
def test_accept_leaves_the_primarys_prefix(primary_epochs, shared, own_epochs, start):
    """Whatever suffix a replica held, after accepting it equals the primary's log up to the match."""
    primary = sorted(primary_epochs)
    prefix = primary[:shared]
    # A suffix written by deposed primaries: their epochs never occur in the primary's log.
    own = [e for e in sorted(own_epochs) if not prefix or e > prefix[-1]]
    replica = _log(*prefix, *own)
    start = min(start, len(primary))
    entries = [[epoch, _write(f"p{i}")] for i, epoch in enumerate(primary)]
    prev_epoch = primary[start - 1] if start else 0
    match, _ = replica.accept(start, prev_epoch, entries[start:])
    if match is None:
        assert start > len(prefix)
    else:
        assert match == len(primary)
        assert [e for e, _ in replica.entries()[:match]] == primary


def test_epochs_only_grow_and_votes_are_durable():
    """The epoch and vote live in storage, so a new ReplicatedLog over it sees them."""
    storage = {}
    ReplicatedLog(storage).set_epoch(3, vote="n2")
    log = ReplicatedLog(storage)
    assert (log.epoch, log.vote) == (3, "n2")
    with pytest.raises(ValueError, match="epochs only grow"):
        log.set_epoch(2)


def test_at_least_as_new_compares_last_epoch_then_length():
    """A longer log of an older epoch is less up to date than a shorter one of a newer epoch."""
    log = _log(1, 1, 1)
    assert log.at_least_as_new(2, 1)
    assert not log.at_least_as_new(1, 2)
    assert log.at_least_as_new(1, 3)


def test_state_machine_applies_lin_kv_ops_and_answers_errors():
    """Writes and cas change the data; a failing cas answers 22, a missing key 20; noops only count."""
    machine = StateMachine()
    assert machine.apply(NOOP) == {"type": "noop_ok"}
    assert isinstance(machine.apply({"type": "cas", "key": "x", "from": 1, "to": 2}), em.RPCError)
    machine.apply(_write(1))
    failed = machine.apply({"type": "cas", "key": "x", "from": 5, "to": 6})
    assert failed.code == 22
    assert machine.apply({"type": "cas", "key": "x", "from": 1, "to": 2}) == {"type": "cas_ok"}
    assert machine.read("x") == {"type": "read_ok", "value": 2}
    assert machine.applied == 5
    with pytest.raises(em.RPCError, match="does not exist"):
        machine.read("y")


def test_a_request_in_the_log_twice_takes_effect_once_and_a_late_older_one_not_at_all():
    """Entries with one rid apply once (the copy answers the same); an older rid from that client changes nothing."""
    machine = StateMachine()
    cas = {"type": "cas", "key": "x", "from": 1, "to": 2, "rid": ["c0", 7]}
    assert machine.apply({**_write(1), "rid": ["c0", 5]}) == {"type": "write_ok"}
    assert machine.apply(cas) == {"type": "cas_ok"}
    assert machine.apply(cas) == {"type": "cas_ok"} and machine.data == {"x": 2}
    assert machine.apply({**_write(1), "rid": ["c0", 5]}) is None and machine.data == {"x": 2}
    assert machine.applied == 4
    machine.reset()
    assert machine.apply(cas).code == 20 and machine.requests == {
        "x": {"c0": [7, {"error": [20, "key 'x' does not exist"]}]}
    }
