"""Linearizability of a history against a model, split by key (P-compositionality).

A history of a key-value store is linearizable exactly when the sub-history
of every key is (Herlihy and Wing's locality, which Porcupine calls
P-compositionality), so by default each key is checked on its own: many
small searches instead of one whose state space is the product of all keys.
``partition=False`` checks the history whole against the product model, the
slow way, for comparison.

The keys are searched in turns, as Porcupine runs them in parallel: each
undecided key in turn gets the same small number of steps, and as soon as
one is found not linearizable the rest stop (``stop_early``). One key that
cannot be decided therefore never hides another that is refuted in a
millisecond, and what that costs is bounded: every other key has run at most
a turn longer than the refuted one. A key holding a stale read (a read
that cannot see what an acknowledged write left, nothing able to change it
in between) or an unwritten one (a read of a value, not the initial one,
that no op invoked before it returned could leave: see
:mod:`emulator.check.triage`) has no order, and is refuted after its first
turn whether or not its search got there: on Porcupine's ``c50-bad`` that
is the first key, which its search alone does not decide in 200,000 steps
(``triage=False`` leaves every key to the search). The
deadline is looked at every turn, and a search stops early enough to free
its cache before the deadline: a million configurations take from 0.3 s to
over a second to free, by the machine, its load and the model's states, so
that cost is measured as the caches grow (a sample of the largest cache's
own configurations is forgotten, which is sound, and the CPU time of its
freeing taken, the least of the latest three; once more when the time to
stop is near), and turned into wall time by the share of a CPU the check
has had so far. A 1 s or 5 s limit ends within about 5% of it in most runs,
and within 10% at a load of 5 to 8 on 2 cores, where the share of a CPU
the freeing itself gets is anyone's guess.

Real-time order is history order (see :mod:`emulator.check.ops`). Which ops
enter the search, and with what meaning, is in :mod:`emulator.check.models`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from emulator.check.errors import ModelError
from emulator.check.models import Model, Prepared, detect_model, get_model, product_steps
from emulator.check.ops import NemesisOp, Op, by_key, collector_paused, key_id, pair_ops
from emulator.check.triage import Stale, Unwritten, stale_read, unwritten_read
from emulator.check.values import show
from emulator.check.verdict import PartitionResult, Verdict
from emulator.check.wgl import Search, SearchResult

__all__ = ["Progress", "check_file", "linearizable", "prepare_partition"]

ALL_KEYS = "*"
"""The key reported for the single partition of an unsplit check."""

_TURN = 1024  # steps a key runs in its turn; the clock is looked at between turns
_FREE_PER_CONFIG = 1e-6  # CPU seconds to free one cached configuration, until measured (about two blocks of 0.4 us)
_MEASURE_FROM = 16_384  # live configurations at which freeing is first timed; again each time they grow by half
_SAMPLE = (2_048, 16_384, 128)  # configurations forgotten to time it: at least, at most, and 1 in this many
_KEEP = 3  # the latest measurements, of which the least CPU time per configuration counts (the least disturbed)
_NEAR = 3  # freeing is timed a last time when the time left is this many times what it should take
_OBSERVERS = ("read", "mismatch")  # actions that leave the state as it is wherever they are legal
_RELAX_AFTER = 8  # turns a partition with timeouts runs undecided before the relaxed search joins it
_STALE_NOTE = (
    "{read} was invoked after {write} completed, and no op that could change what it left may come between "
    "them: the read is stale in every order, so none exists; "
    "the prefix is the longest the search found in its first turn"
)
_UNWRITTEN_NOTE = (
    "{read} returned {value}, not the initial value, and no op that could leave it ({leaves}) was invoked before "
    "the read returned; {later}: the read is impossible in every order, so none exists; "
    "the prefix is the longest the search found in its first turn"
)
_RELAXED_NOTE = (
    "no order exists even if every timed-out op may take effect any number of times "
    "(a relaxed search proved it); the prefix is the longest the search found"
)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running check, handed to ``linearizable(progress=...)``.

    ``keys_done`` of ``keys`` partitions are decided; ``explored`` counts the
    configurations cached so far; ``elapsed`` is wall seconds since the start.
    """

    keys_done: int
    keys: int
    explored: int
    elapsed: float
    round: int


def linearizable(
    history: Sequence[dict[str, Any]] | Sequence[Op],
    model: str | Model | None = None,
    timeout: float | None = None,
    partition: bool = True,
    stop_early: bool = True,
    progress: Callable[[Progress], Any] | None = None,
    progress_every: float = 1.0,
    steps: int | None = None,
    triage: bool = True,
) -> Verdict:
    """Check a history for linearizability.

    Args:
        history: capsim op dicts (as recorded or read by :func:`read_history`),
            or ops already paired by :func:`emulator.check.ops.pair_ops`.
        model: a model name (``"cas_register"``, ``"register"``, ``"kv"``,
            ``"knossos-cas-register"``, ``"porcupine-etcd"``; ``-`` or ``_``)
            or a :class:`Model`; None detects it from the operations
            (:func:`emulator.check.models.detect_model`).
        timeout: wall-clock seconds to search before answering ``valid=None``;
            None searches until done.
        partition: check each key separately (True) or the whole history at once.
        stop_early: stop the keys still running as soon as one is found not
            linearizable (they are reported unknown).
        progress: called with a :class:`Progress` about every ``progress_every``
            wall seconds while the search runs.
        progress_every: the wall seconds between two ``progress`` calls.
        steps: a budget of search steps (the search's unit of work), all
            keys together, before answering ``valid=None``: unlike
            ``timeout``, the same answer on every machine and at any load.
            It is spent in turns of 1,024 steps of one key, so the last turn
            may pass it by up to 1,023; a turn also runs as many steps of the
            key's relaxed search once it has one, which the budget does not
            count. With both, whichever runs out first; None: no step limit.
        triage: look at each key's reads for one that no order can place (a
            stale read, or a read of a value no op could have left by then:
            :mod:`emulator.check.triage`) and refute the key after its first
            turn when there is one (True; split checks only: an unsplit
            one is left to the search); False leaves every key to the
            search, to measure the search itself. Verdicts are the same either
            way, except that the search alone may run out of steps or time.

    Returns:
        A :class:`Verdict`: ``.valid`` is True, False, or None when the time
        (or the steps) ran out before any key was found non-linearizable.

    Raises:
        ModelError: an op the model has no meaning for, an unknown model, or
            a ``steps`` that is not a positive integer.
        HistoryFormatError: the history does not pair up into operations.
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ModelError(f"steps must be a positive integer (or None for no step limit), got {steps!r}")
    with collector_paused():
        return _linearizable(history, model, timeout, partition, stop_early, progress, progress_every, steps, triage)


def _linearizable(
    history: Sequence[dict[str, Any]] | Sequence[Op],
    model: str | Model | None,
    timeout: float | None,
    partition: bool,
    stop_early: bool,
    progress: Callable[[Progress], Any] | None,
    progress_every: float,
    steps: int | None = None,
    triage: bool = True,
) -> Verdict:
    """:func:`linearizable`, with the collector paused by the caller."""
    ops, nemesis = _paired(history)
    chosen = detect_model(ops, getattr(history, "format", None) == "edn-vector") if model is None else get_model(model)
    started = time.perf_counter()  # wall-clock ok: reports how long the check took
    deadline = None if timeout is None else time.monotonic() + timeout  # wall-clock ok
    groups = by_key(ops)
    if partition or len(groups) == 1:
        parts = [_Part(chosen, key, group, triage=triage) for key, group in groups.items()]
    else:
        parts = [_Part(chosen, ALL_KEYS, ops, slots={key: i for i, key in enumerate(groups)})]
    turns = None if steps is None else -(-steps // _TURN)  # a turn is _TURN steps of one key
    _Rounds(parts, deadline, stop_early, progress, progress_every, turns).run()
    elapsed = time.perf_counter() - started  # wall-clock ok
    verdict = Verdict(chosen, [p.result() for p in parts], ops, nemesis, partition, elapsed, timeout, steps)
    verdict.detected = model is None
    return verdict


def check_file(
    path: str | Path | BinaryIO,
    model: str | Model | None = None,
    partition: bool = True,
    timeout: float | None = None,
    **options: Any,
) -> Verdict:
    """Read a history file (any supported format, or a binary stream such as stdin) and check it.

    ``verdict.elapsed`` is the checking time alone, without reading the file.
    """
    from emulator.check.readers import read_history  # the readers (EDN, logs) load only when a file is read

    return linearizable(read_history(path), model=model, timeout=timeout, partition=partition, **options)


def prepare_partition(model: Model, ops: Sequence[Op]) -> list[Prepared]:
    """Compile the ops of one partition, dropping those that cannot have had an effect."""
    prepared = (model.prepare(op) for op in ops)
    return [p for p in prepared if p is not None]


class _Part:
    """One partition: its ops, its search (made when first run) and its result."""

    def __init__(
        self, model: Model, key: Any, ops: Sequence[Op], slots: dict[str, Any] | None = None, triage: bool = True
    ) -> None:
        self.model, self.key, self.ops, self.slots = model, key, list(ops), slots
        self.triage = triage and slots is None  # look for a proof without the search (one key's value only)
        self.prepared = prepare_partition(model, ops)
        self.search: Search | None = None
        self.refuter: Search | None = None  # the relaxed search, once this one turns out hard
        self.refuted_explored = 0  # configurations the relaxed search explored, once it is done
        self.turns = 0
        self.outcome: Any = None
        self.elapsed = 0.0
        self.checked = False
        self.note = ""
        self.refuted_by: str | None = None
        self.witnesses: dict[int, str] = {}  # the ops the note names, by id: their part in it
        self.proof: Stale | Unwritten | None = None  # a read no order can place (looked for at the first turn)

    def run(self, budget: int) -> bool:
        """Search for ``budget`` more steps (and as many for the relaxed search, once it runs); True once decided."""
        if self.search is None:
            self.search, self.checked = self._search(), True
            self.proof = self._proof() if self.triage else None
        started = time.perf_counter()  # wall-clock ok
        self.outcome = self.search.run(budget)
        self.turns += 1
        if self.outcome is None and self.turns == _RELAX_AFTER and not all(p.required for p in self.prepared):
            self.refuter = self._search(reuse_optional=True)
        if self.outcome is None and self.proof is not None:
            self._refute(self.proof)
        if self.outcome is None and self.refuter is not None:
            self._run_refuter(budget)
        self.elapsed += time.perf_counter() - started  # wall-clock ok
        return self.outcome is not None

    def _proof(self) -> Stale | Unwritten | None:
        """A read that no order can place, found without a search (:mod:`emulator.check.triage`), or None."""
        unwritten = unwritten_read(self.prepared, self.model.init, self.model.strings)
        return unwritten if unwritten is not None else stale_read(self.prepared, self.model.strings)

    def _refute(self, proof: Stale | Unwritten) -> None:
        """Not linearizable, by ``proof``; the search stops with its prefix, and the note says why."""
        best = self.search.stop()  # type: ignore[union-attr]
        self.outcome = SearchResult(False, best.order, best.state, best.explored)
        self.refuted_by = "stale read" if isinstance(proof, Stale) else "unwritten read"
        match proof:
            case Unwritten(read, later):
                self.note = _UNWRITTEN_NOTE.format(
                    read=self._line(read), value=show(read.args[0]), leaves=self._leaves(), later=self._later(later)
                )
                self.witnesses = {read.op.id: "returned a value no op could have left by the time it returned"}
                if later is not None:
                    self.witnesses[later.op.id] = "the first op that could leave the value read, invoked after it"
            case Stale(write, read):
                self.note = _STALE_NOTE.format(read=self._line(read), write=self._line(write))
                self.witnesses = {
                    write.op.id: "what this op left cannot change before the stale read",
                    read.op.id: "a stale read: invoked after the op it cannot see completed",
                }

    def _line(self, p: Prepared) -> str:
        """``p3 read() -> 7 [12..20]``: an op as the notes name it."""
        return f"p{p.op.process} {self.model.describe(p.op)} [{p.op.call}..{p.op.ret}]"

    def _later(self, later: Prepared | None) -> str:
        """What an unwritten read's note says of the first op that could leave its value."""
        if later is None:
            return "no op on its key could leave it"
        return f"the first that could, {self._line(later)}, was invoked after it returned"

    def _leaves(self) -> str:
        """The ops that may leave a value, in this model."""
        kinds = ["a write or put of it"] + (["a cas to it"] if "cas" in self.model.kinds else [])
        if self.model.strings and "append" in self.model.kinds:
            kinds.append("an append of a string it ends with")
        return ", or ".join(kinds)

    def _run_refuter(self, budget: int) -> None:
        """A turn of the relaxed search; when it finds no order either, this partition has none."""
        got = self.refuter.run(budget)  # type: ignore[union-attr]
        if got is None:
            return
        self.refuter, self.refuted_explored = None, got.explored
        if got.valid is False:
            best = self.search.stop()  # type: ignore[union-attr]
            self.outcome = SearchResult(False, best.order, best.state, best.explored)
            self.note, self.refuted_by = _RELAXED_NOTE, "relaxed search"

    def stop(self) -> None:
        """Give up on this partition: unknown, with the longest prefix found so far."""
        if self.search is not None and self.outcome is None:
            self.outcome = self.search.stop()
        if self.refuter is not None:
            self.refuted_explored, self.refuter = self.refuter.explored, None

    @property
    def explored(self) -> int:
        searches = (self.search, self.refuter)
        return self.refuted_explored + sum(0 if s is None else s.explored for s in searches)

    def result(self) -> PartitionResult:
        """The partition's answer, for the verdict."""
        got = self.outcome
        valid, order, state = (None, [], None) if got is None else (got.valid, got.order, got.state)
        ids = [self.prepared[i].op.id for i in order]
        if got is None:
            state = self._init()
        result = PartitionResult(
            self.key, valid, self.ops, self.prepared, ids, state, self.explored, self.elapsed, checked=self.checked
        )
        result.slots, result.note, result.witnesses = self.slots, self.note, self.witnesses
        result.refuted_by = self.refuted_by or ("search" if valid is False else None)
        self.search = None  # the cache can go now
        return result

    def _init(self) -> Any:
        return self.model.init if self.slots is None else tuple(self.model.init for _ in self.slots)

    def _search(self, reuse_optional: bool = False) -> Search:
        prepared = self.prepared
        if self.slots is None:
            steps = [p.step for p in prepared]
        else:
            steps = product_steps(prepared, [self.slots[key_id(p.op.key)] for p in prepared])
        keys = [key_id(p.op.key) for p in prepared]
        return Search(
            [p.op.call for p in prepared],
            [p.op.returned if p.required else math.inf for p in prepared],
            steps,
            [p.required for p in prepared],
            self._init(),
            blind=[p.action == "write" for p in prepared],
            keys=keys,
            signatures=[(p.action, p.args, k) for p, k in zip(prepared, keys)],
            observers=[p.action in _OBSERVERS for p in prepared],
            reuse_optional=reuse_optional,
        )


class _Rounds:
    """Runs partitions in turns of equal step budgets (see the module doc)."""

    def __init__(
        self,
        parts: list[_Part],
        deadline: float | None,
        stop_early: bool,
        progress: Callable[[Progress], Any] | None,
        every: float,
        turns: int | None = None,
    ) -> None:
        self.parts, self.deadline, self.stop_early = parts, deadline, stop_early
        self.turns_left = turns  # turns any key may still take (None: no step limit)
        self.progress, self.every = progress, every
        self.started = time.monotonic()  # wall-clock ok
        self.started_cpu = time.process_time()  # wall-clock ok
        self.next_report = self.started + every
        self.round = 0
        self.live = 0  # configurations cached by the searches still running
        self.free_per_config = _FREE_PER_CONFIG  # CPU seconds, measured as the caches grow (see _measure_freeing)
        self.measure_at = _MEASURE_FROM
        self.near = False  # the last measurement, near the time to stop, is taken
        self.samples: list[tuple[float, int]] = []  # (seconds, configurations) of the latest measurements

    def run(self) -> None:
        pending = list(self.parts)
        while pending and not self._late():
            self.round += 1
            still: list[_Part] = []
            for i, part in enumerate(pending):
                before = part.explored
                if self.turns_left is not None:
                    self.turns_left -= 1
                if not part.run(_TURN):
                    self.live += part.explored - before
                    still.append(part)
                elif self.stop_early and part.outcome.valid is False:
                    still = []
                    break
                else:
                    self.live -= before
                self._report()
                if self.deadline is not None and self._measure_due(self.deadline):
                    self._measure_freeing(pending)
                if self._late():
                    still += pending[i + 1 :]
                    break
            pending = still
        for part in self.parts:
            part.stop()

    def _late(self) -> bool:
        if self.turns_left is not None and self.turns_left <= 0:
            return True
        if self.deadline is None:
            return False
        return time.monotonic() > self.deadline - self._freeing()  # wall-clock ok

    def _freeing(self) -> float:
        """Wall seconds that freeing the live caches will take.

        CPU seconds measured, over the share of a CPU this check gets.
        """
        wall = time.monotonic() - self.started  # wall-clock ok
        cpu = time.process_time() - self.started_cpu  # wall-clock ok
        return self.free_per_config * self.live * (wall / cpu if cpu > 0 and wall > cpu else 1.0)

    def _measure_due(self, deadline: float) -> bool:
        """Time freeing again: the caches grew by half, or the time to stop is near (a last look, at this load)."""
        if self.live >= self.measure_at:
            return True
        if self.near or self.live < _MEASURE_FROM:
            return False
        self.near = time.monotonic() > deadline - _NEAR * self._freeing()  # wall-clock ok
        return self.near

    def _measure_freeing(self, pending: list[_Part]) -> None:
        """Time freeing a sample of the largest live cache: what freeing them all will cost, on this machine, now.

        The sample is real configurations (forgotten by their search, which is
        sound), so their memory is as scattered and as cold as the rest.
        """
        self.measure_at = self.live * 3 // 2
        running = [p.search for p in pending if p.search is not None and p.outcome is None]
        if not running:
            return
        search = max(running, key=lambda s: s.explored)
        least, most, share = _SAMPLE
        started = time.process_time()  # wall-clock ok: CPU time, so a preempted sample does not count
        n = search.forget(min(most, max(least, self.live // share)))
        took = time.process_time() - started  # wall-clock ok
        if n < least // 2:
            return
        self.samples = (self.samples + [(took, n)])[-_KEEP:]
        self.free_per_config = min(t / k for t, k in self.samples)

    def _report(self) -> None:
        if self.progress is None:
            return
        now = time.monotonic()  # wall-clock ok
        if now >= self.next_report:
            self.next_report = now + self.every
            done = sum(1 for p in self.parts if p.outcome is not None)
            explored = sum(p.explored for p in self.parts)
            self.progress(Progress(done, len(self.parts), explored, now - self.started, self.round))


def _paired(history: Sequence[dict[str, Any]] | Sequence[Op]) -> tuple[list[Op], list[NemesisOp]]:
    """Pair a list of op dicts; pass through a list of Ops."""
    if history and all(isinstance(op, Op) for op in history):
        return list(cast("Sequence[Op]", history)), []
    return pair_ops(cast("Sequence[dict[str, Any]]", history))
