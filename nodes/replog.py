"""The replicated log behind primary-replica replication, and the state it builds.

``ReplicatedLog`` keeps a node's durable protocol state in its ``storage``:
the entries (``[epoch, op]`` pairs, indexed from 1), the current epoch, the
vote cast in it, and the commit index. It enforces Raft's log-matching rule:
a replica accepts entries only after a predecessor whose epoch matches the
primary's, and it truncates only at a real conflict, so a duplicated or
reordered old append can never cut entries a newer one delivered.

``StateMachine`` applies committed entries (lin-kv ``write`` and ``cas`` ops,
and the ``noop`` a new primary commits first) to an in-memory dict; it is
rebuilt from the log after a restart or a truncation. An op that carries its
client's request id (``"rid"``) applies at most once
(:func:`nodes.kv.apply_once`): the record of requests applied is part of the
state every replica builds from the log, so it survives failovers too, and
a request that reached the log twice (through two primaries, say) takes
effect once.

Pure bookkeeping: no clock, no network, no randomness.
"""

from __future__ import annotations

from typing import Any

from emulator import RPCError
from nodes.kv import apply_once, apply_op

__all__ = ["NOOP", "ReplicatedLog", "StateMachine"]

#: The op a new primary appends first: committing it commits every earlier entry.
NOOP = {"type": "noop"}


class ReplicatedLog:
    """The durable log, epoch, vote and commit index of one node.

    Args:
        storage: the node's ``self.storage`` (survives crash and restart).
    """

    def __init__(self, storage):
        self._storage = storage
        self._entries: list = storage.setdefault("log", [])

    # -- epoch and vote ------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._storage.get("epoch", 0)

    @property
    def vote(self) -> str | None:
        """Whom this node voted for in the current epoch (None: nobody yet)."""
        return self._storage.get("vote")

    def set_epoch(self, epoch: int, vote: str | None = None) -> None:
        """Move to ``epoch`` (never backwards), with the vote cast in it."""
        if epoch < self.epoch:
            raise ValueError(f"epochs only grow: at {self.epoch}, asked for {epoch}")
        self._storage["epoch"] = epoch
        self._storage["vote"] = vote

    def cast_vote(self, candidate: str) -> None:
        self._storage["vote"] = candidate

    # -- entries -------------------------------------------------------------------------

    @property
    def last_index(self) -> int:
        return len(self._entries)

    @property
    def last_epoch(self) -> int:
        return self._entries[-1][0] if self._entries else 0

    def epoch_at(self, index: int) -> int:
        """The epoch of entry ``index`` (0 for index 0, before the first entry)."""
        return self._entries[index - 1][0] if index > 0 else 0

    def op_at(self, index: int) -> dict:
        return self._entries[index - 1][1]

    def append(self, epoch: int, op: dict) -> int:
        """Append one entry (on the primary) and return its index."""
        self._entries.append([epoch, op])
        return len(self._entries)

    def slice(self, start: int, limit: int) -> list:
        """Up to ``limit`` entries from index ``start`` on, for an append message."""
        return self._entries[start - 1 : start - 1 + limit]

    def entries(self) -> list:
        """A copy of every entry, ``[epoch, op]`` from index 1 on (for inspection)."""
        return [[epoch, dict(op)] for epoch, op in self._entries]

    def at_least_as_new(self, last_epoch: int, last_index: int) -> bool:
        """Is a log ending at (last_epoch, last_index) at least as up to date as this one?"""
        return (last_epoch, last_index) >= (self.last_epoch, self.last_index)

    def accept(self, prev_index: int, prev_epoch: int, entries: list) -> tuple[int | None, int | None]:
        """Take a primary's entries that follow ``prev_index``.

        Returns:
            ``(match, truncated)``: the index up to which this log now equals
            the primary's (None when the predecessor does not match, so the
            primary must go back), and the first index discarded by a
            conflict (None when nothing was cut).
        """
        if prev_index > self.last_index or self.epoch_at(prev_index) != prev_epoch:
            return None, None
        truncated = None
        for offset, (epoch, op) in enumerate(entries):
            index = prev_index + 1 + offset
            if index <= self.last_index:
                if self.epoch_at(index) == epoch:
                    continue
                truncated = index
                del self._entries[index - 1 :]
                if self._storage.get("commit", 0) >= index:  # only async commits can be cut
                    self.set_commit(index - 1)
            self._entries.append([epoch, op])
        return prev_index + len(entries), truncated

    # -- commit ------------------------------------------------------------------------------

    @property
    def commit(self) -> int:
        """The highest index this node knows to be committed (capped by its log)."""
        return min(self._storage.get("commit", 0), self.last_index)

    def set_commit(self, index: int) -> None:
        self._storage["commit"] = index


class StateMachine:
    """The key-value data built by applying committed log entries in order.

    ``applied`` is the index of the last entry applied, the data's version.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.data: dict = {}
        self.requests: dict = {}  # key -> {client: [msg_id, answer]}: the requests applied
        self.applied = 0

    def apply(self, op: dict) -> dict | RPCError | None:
        """Apply the next entry's op; returns its reply body, the error it answers, or None.

        None: the op is an older request than one its client already applied
        to its key (a late copy): it changes nothing and answers nothing.
        """
        self.applied += 1
        if op.get("type") == "noop":
            return {"type": "noop_ok"}
        try:
            return apply_once(self.data, self.requests, op, op.get("rid"))
        except RPCError as exc:
            return exc

    def read(self, key: Any) -> dict:
        """A lin-kv read of the data as it stands.

        Raises:
            RPCError: 20 when ``key`` has no value.
        """
        return apply_op(self.data, {"type": "read", "key": key})
