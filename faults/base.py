"""The nemesis base class and the ``Driver`` protocol it is started through.

Every kind of nemesis (:mod:`faults.nemesis`, :mod:`faults.membership`)
subclasses :class:`Nemesis` and asks its driver, an
:class:`~faults.injector.Injector`, for targets and ledgers through
:class:`Driver`. They live here, below both, so that the catalogue of kinds
(``faults.nemesis.NEMESES``) can import every kind without an import cycle;
import them from :mod:`faults.nemesis` or :mod:`faults`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from faults.partitions import Cut
from faults.spec import ParamError, distribution_spec
from faults.target import FaultTarget

if TYPE_CHECKING:
    from faults.nemesis import Clock

__all__ = ["Driver", "Nemesis", "background"]


class Driver(Protocol):
    """What a nemesis asks of whoever starts it (a :class:`~faults.injector.Injector`).

    The target and a seeded stream to choose targets with, and the ledgers
    each kind of fault files its changes in, so that stopping one undoes
    exactly what starting it did.
    """

    @property
    def sim(self) -> FaultTarget:
        """The simulation or cluster under test."""

    @property
    def rng(self) -> random.Random:
        """Where random targets come from."""

    def primary_of(self, primary: Any = None) -> str:
        """The current leader."""

    def leader_now(self) -> str | None:
        """The current leader, or None while no one leads (an election)."""

    def free_servers(self) -> list[str]:
        """Servers running and not held crashed or paused by this driver's faults, sorted."""

    def link_pairs(self, links: Any, clients: bool) -> list[list[str]]:
        """The undirected pairs a link fault covers, sorted."""

    def add_partition(self, nemesis: Nemesis, cut: Cut) -> None:
        """Make ``cut`` for ``nemesis``."""

    def remove_partition(self, nemesis: Nemesis) -> None:
        """Lift ``nemesis``'s cuts only."""

    def add_link_fault(self, nemesis: Nemesis, pairs: list[list[str]], settings: dict[str, Any]) -> None:
        """Put ``settings`` on both directions of ``pairs``."""

    def remove_link_fault(self, nemesis: Nemesis) -> None:
        """Take ``nemesis``'s settings off its links."""

    def set_clocks(self, nemesis: Clock, nodes: list[str]) -> None:
        """Give ``nodes`` ``nemesis``'s clock reading."""

    def clear_clocks(self, nemesis: Clock) -> None:
        """Take ``nemesis``'s reading off the clocks it set."""

    def crash(self, nemesis: Nemesis, nodes: list[str]) -> None:
        """Crash ``nodes`` for ``nemesis``."""

    def restart(self, nemesis: Nemesis) -> None:
        """Restart the nodes ``nemesis`` crashed that no one restarted since."""

    def pause(self, nemesis: Nemesis, nodes: list[str]) -> None:
        """Pause ``nodes`` for ``nemesis``."""

    def resume(self, nemesis: Nemesis) -> None:
        """Resume the nodes ``nemesis`` paused that no one else holds paused."""


class Nemesis:
    """Base class: a kind, validated parameters, and the three steps an injector drives.

    Subclasses set ``kind`` and ``PARAMS`` (name -> default) and implement
    ``_check`` (validate), ``prepare`` (choose targets, no side effects,
    return the recorded value), ``inject`` and ``repair``.
    """

    kind: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        for name, value in params.items():
            if name not in self.PARAMS:
                raise ParamError(name, value, f"a parameter of {self.kind}: {', '.join(sorted(self.PARAMS))}")
        self.given = {k: v for k, v in params.items() if v is not None}
        self.params = self._check({**self.PARAMS, **self.given})
        self.id: int | None = None

    def _check(self, params: dict) -> dict:
        return params

    def prepare(self, injector: Driver) -> dict:
        """Choose the targets; return what ``start-<kind>`` records."""
        raise NotImplementedError

    def inject(self, injector: Driver) -> None:
        """Make the fault happen."""
        raise NotImplementedError

    def repair(self, injector: Driver) -> dict | None:
        """Undo the fault; return extra fields for ``stop-<kind>``."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        """``{"kind": ..., **parameters given}``: what a schedule step stores."""
        return {"kind": self.kind, **plain_params(self.given)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in plain_params(self.given).items())
        return f"{type(self).__name__}({args})"


def background(sim: FaultTarget, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
    """Run a nemesis's own task (a flap, a strobe, a membership change) on ``sim``'s loop.

    An exception it raises goes to the loop's exception handler when it
    happens (a simulation lists it in ``sim.errors``, which fails the
    ``node-errors`` check), not when the task is garbage-collected, perhaps never.
    """
    task = sim.loop.create_task(coro, name=name)
    task.add_done_callback(_report)
    return task


def _report(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        task.get_loop().call_exception_handler(
            {"message": f"nemesis task {task.get_name()} failed", "exception": task.exception(), "task": task}
        )


def plain_params(params: dict) -> dict:
    """The parameters as plain data: a latency distribution becomes its spec (for JSON and repr)."""
    return {k: (distribution_spec(v) if k == "latency" else v) for k, v in params.items()}
