"""WARS's four latency legs, each its own distribution, as PBS defines them, and the paper's production fits.

Bailis et al. (VLDB 2012) draw W (write to a replica), A (its ack), R (read
request to a replica) and S (the replica's answer) from four distributions,
not one: their LinkedIn and Yammer fits give W a distribution of its own.
``--legs`` takes them (``w=SPEC,a=SPEC,r=SPEC,s=SPEC``, any leg left out is
``--latency``) or a preset named for one of those fits.

On capsim a leg is a link direction, not a message type: W and R both travel
coordinator->replica, A and S replica->coordinator, and the network sets one
latency per direction. So capsim can run WARS only with W and R alike and A
and S alike (:attr:`Legs.runnable`); otherwise only the model is computed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import emulator as em

__all__ = ["PRESETS", "Legs", "Mixture", "parse_legs"]


class Mixture(em.Distribution):
    """A draw from ``first`` with probability ``weight``, else from ``second``: PBS's Pareto/exponential fits."""

    def __init__(self, weight: float, first: em.Distribution, second: em.Distribution, name: str = ""):
        if not 0 <= weight <= 1:
            raise em.ConfigError(f"a mixture's weight is a probability from 0 to 1, got {weight!r}")
        self.weight, self.first, self.second, self.name = float(weight), first, second, name

    def sample(self, rng: random.Random) -> float:
        return (self.first if rng.random() < self.weight else self.second).sample(rng)

    @property
    def mean(self) -> float:
        return self.weight * self.first.mean + (1 - self.weight) * self.second.mean

    def __str__(self) -> str:
        return self.name or f"{self.weight:g}*{self.first}+{1 - self.weight:g}*{self.second}"


@dataclass(frozen=True)
class Legs:
    """The distributions of WARS's W, A, R and S legs."""

    w: em.Distribution
    a: em.Distribution
    r: em.Distribution
    s: em.Distribution

    @classmethod
    def same(cls, leg: em.Distribution) -> Legs:
        """Every leg drawn from ``leg``."""
        return cls(leg, leg, leg, leg)

    @property
    def runnable(self) -> bool:
        """Whether capsim can run these legs: W like R (coordinator->replica), A like S (replica->coordinator)."""
        return str(self.w) == str(self.r) and str(self.a) == str(self.s)

    @property
    def uniform(self) -> bool:
        """Whether all four legs are one distribution."""
        return len({str(self.w), str(self.a), str(self.r), str(self.s)}) == 1

    def __str__(self) -> str:
        if self.uniform:
            return str(self.w)
        return f"w={self.w},a={self.a},r={self.r},s={self.s}"


def _pareto_exponential(pareto: float, scale_ms: float, alpha: float, rate_per_ms: float, name: str) -> Mixture:
    """PBS's fit: Pareto(x_m = scale_ms, alpha) with probability ``pareto``, else exponential(lambda per ms)."""
    return Mixture(pareto, em.Pareto(scale_ms / 1000, alpha), em.Exponential(1 / rate_per_ms / 1000), name)


_SSD = _pareto_exponential(0.9122, 0.235, 10, 1.66, "lnkd-ssd")
_DISK_W = _pareto_exponential(0.38, 1.05, 1.51, 0.183, "lnkd-disk:w")
_YMMR_W = _pareto_exponential(0.939, 3, 3.35, 0.0028, "ymmr:w")
_YMMR_ARS = _pareto_exponential(0.982, 1.5, 3.8, 0.0217, "ymmr:ars")

#: The production fits of PBS (VLDB 2012, Table 3), in ms: LinkedIn's Voldemort on SSDs (every leg the same
#: fit) and on disks (W slower, A=R=S as on SSDs), and Yammer's Riak (W and A=R=S each their own). The
#: authors' simulator draws the same mixtures, but for Yammer's W tail index (3.5 there, 3.35 here).
PRESETS = {
    "lnkd-ssd": Legs.same(_SSD),
    "lnkd-disk": Legs(_DISK_W, _SSD, _SSD, _SSD),
    "ymmr": Legs(_YMMR_W, _YMMR_ARS, _YMMR_ARS, _YMMR_ARS),
}


def parse_legs(text: str, default: em.Distribution) -> Legs:
    """``"w=pareto:1ms:1.5,a=exponential:2ms"`` (a leg left out is ``default``), or a name in ``PRESETS``.

    Raises:
        ConfigError: an unknown preset or leg, a leg given twice, or a distribution that does not parse.
    """
    text = text.strip()
    if text in PRESETS:
        return PRESETS[text]
    given: dict[str, em.Distribution] = {}
    for part in text.split(","):
        name, sep, spec = part.strip().partition("=")
        if not sep or name not in ("w", "a", "r", "s"):
            raise em.ConfigError(
                f"--legs: {part.strip()!r} is not LEG=SPEC with LEG one of w, a, r, s (for example "
                f"w=pareto:1ms:1.5,a=exponential:2ms), nor a preset ({', '.join(PRESETS)})"
            )
        if name in given:
            raise em.ConfigError(f"--legs: {name} is given twice; give each leg once")
        try:
            given[name] = em.parse_distribution(spec)
        except em.ConfigError as exc:
            raise em.ConfigError(f"--legs: {name}: {exc}") from None
    return Legs(*(given.get(leg, default) for leg in ("w", "a", "r", "s")))
