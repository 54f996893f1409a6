"""Traffic splitting: a canary (or a B variant) gets a weighted share, and is rolled back when it errs.

Guarantees: while the canary is live, each request goes to it with
probability ``weight`` (the balancer's seeded stream), or, with
``sticky="client"``, every request of one client goes to the same side (A/B
testing: a client whose hash falls below ``weight`` sees the canary). Once
``min_requests`` canary requests have finished and the share of failures
among the last ``window`` of them reaches ``error_threshold``, the canary is
rolled back: from that instant no request goes to it.
Gives up: the requests the canary failed before the verdict, which are at
most the failures among its first finished requests up to the one that
tripped the rollback, plus those already in flight to it then
(``stats["failed"]``). A rollback is final, across a crash of the balancer
too (it keeps the rollback in its ``storage``; the counts are memory).

What counts as a failure is the balancer's: a timeout, or an error saying the
backend could not serve (0 timeout, 1 node not found, 11 unavailable, 13
crash). An application answer (20, 22) is a success.
"""

from __future__ import annotations

import collections

from emulator import ConfigError
from emulator.validate import is_number, whole
from nodes.hashring import key_hash

__all__ = ["LIVE", "ROLLED_BACK", "Canary"]

LIVE, ROLLED_BACK = "live", "rolled-back"


class Canary:
    """The canary's share, its recent outcomes and its state, for one load balancer.

    Args:
        backend: the canary's node name (not in the balancer's rotation).
        weight: the share of requests it gets, in (0, 1).
        sticky: ``"request"`` (each request drawn at random) or ``"client"`` (by client, for A/B).
        error_threshold: failure share over the last ``window`` outcomes that rolls it back, in (0, 1].
        min_requests: finished canary requests before it can be judged (>= 1).
        window: most recent outcomes the share is taken over (>= min_requests).
    """

    def __init__(
        self,
        backend: str,
        weight: float = 0.1,
        sticky: str = "request",
        error_threshold: float = 0.5,
        min_requests: int = 10,
        window: int = 20,
    ):
        if not isinstance(backend, str) or not backend:
            raise ConfigError(f"canary backend must be a node name, got {backend!r}")
        if not is_number(weight, gt=0, lt=1):
            raise ConfigError(f"canary weight is the share of requests it gets, in (0, 1), got {weight!r}")
        if sticky not in ("request", "client"):
            raise ConfigError(f"canary sticky must be 'request' or 'client' (A/B by client), got {sticky!r}")
        if not is_number(error_threshold, gt=0, le=1):
            raise ConfigError(f"canary error_threshold is a failure share in (0, 1], got {error_threshold!r}")
        for label, value in (("min_requests", min_requests), ("window", window)):
            whole(f"canary {label}", value)
        if window < min_requests:
            raise ConfigError(f"canary window ({window}) must hold at least min_requests ({min_requests}) outcomes")
        self.backend, self.weight, self.sticky = backend, weight, sticky
        self.error_threshold, self.min_requests, self.window = error_threshold, min_requests, window
        self.state = LIVE
        self.rolled_back_at: float | None = None
        #: canary requests still in flight when it was rolled back (they may fail too)
        self.in_flight_at_rollback: int | None = None
        self._recent: collections.deque = collections.deque(maxlen=window)
        self.finished = 0
        self.in_flight = 0
        #: counts: sent, ok, failed (every canary request was sent while it was live: all failed before rollback)
        self.stats = {"sent": 0, "ok": 0, "failed": 0}

    def takes(self, client, rng) -> bool:
        """Whether this request goes to the canary (False once rolled back)."""
        if self.state != LIVE:
            return False
        if self.sticky == "client":
            return key_hash(client) < self.weight * 2**32
        return rng.random() < self.weight

    def sent(self) -> None:
        self.stats["sent"] += 1
        self.in_flight += 1

    def finished_request(self, failed: bool, now: float) -> bool:
        """Record one canary outcome; True when this outcome rolled the canary back."""
        self.in_flight -= 1
        self.finished += 1
        self.stats["failed" if failed else "ok"] += 1
        self._recent.append(failed)
        if (
            self.state == LIVE
            and self.finished >= self.min_requests
            # the share itself, correctly rounded: 7 / 25 is the float 0.28 is, where 0.28 * 25 is just above 7
            and sum(self._recent) / len(self._recent) >= self.error_threshold
        ):
            self.state, self.rolled_back_at = ROLLED_BACK, now
            self.in_flight_at_rollback = self.in_flight
            return True
        return False

    def restore(self, rolled_back_at: float) -> None:
        """Come back rolled back, as at ``rolled_back_at`` (a restarted balancer keeps the rollback final)."""
        self.state, self.rolled_back_at = ROLLED_BACK, rolled_back_at

    def verdict(self) -> str:
        """The failures behind the current state, in words."""
        return f"{sum(self._recent)} of the last {len(self._recent)} canary requests failed"

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "state": self.state,
            "weight": self.weight,
            "rolled_back_at": self.rolled_back_at,
            "in_flight_at_rollback": self.in_flight_at_rollback,
            "in_flight": self.in_flight,
            **self.stats,
        }
