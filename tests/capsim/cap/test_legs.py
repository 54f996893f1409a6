"""WARS's four legs (capsim/cap/legs.py): parsing, the paper's presets, the model with its own legs and capsim's run."""

import math
import random

import pytest

import emulator as em
from capsim.cap import wars
from capsim.cap.legs import PRESETS, Legs, Mixture, parse_legs
from capsim.cap.pacelc import Sweep, run_job


def independent_wars(n, r, w, t, draws, trials, seed):
    """P(stale) straight from the paper's WARS, each leg from its own ``draws[leg](rng)``."""
    rng = random.Random(seed)
    stale = 0
    for _ in range(trials):
        write_at = [draws["w"](rng) for _ in range(n)]
        commit = sorted(at + draws["a"](rng) for at in write_at)[w - 1]
        read_at = [commit + t + draws["r"](rng) for _ in range(n)]
        answered_at = [at + draws["s"](rng) for at in read_at]
        first = sorted(range(n), key=lambda i: answered_at[i])[:r]
        stale += all(read_at[i] < write_at[i] for i in first)
    return stale / trials


def test_a_leg_left_out_is_the_default_and_a_preset_is_its_legs():
    """w=... alone leaves a, r and s at --latency; a preset name gives the paper's fit."""
    default = em.Exponential(0.001)
    legs = parse_legs("w=pareto:1ms:1.5", default)
    assert (str(legs.w), legs.a, legs.r, legs.s) == ("pareto:1ms:1.5", default, default, default)
    assert parse_legs(" ymmr ", default) is PRESETS["ymmr"] and not PRESETS["ymmr"].runnable
    assert PRESETS["lnkd-ssd"].uniform and PRESETS["lnkd-ssd"].runnable and not PRESETS["lnkd-disk"].runnable


@pytest.mark.parametrize(
    "text, message",
    [
        ("q=1ms", "'q=1ms' is not LEG=SPEC"),
        ("lnkd", "nor a preset (lnkd-ssd, lnkd-disk, ymmr)"),
        ("w=exponential:1ms,w=exponential:2ms", "w is given twice"),
        ("a=gaussian:1ms", "--legs: a: unknown latency distribution"),
    ],
)
def test_bad_legs_say_what_to_write(text, message):
    """Each mistake names the leg and what to write instead."""
    with pytest.raises(em.ConfigError, match="--legs") as info:
        parse_legs(text, em.Exponential(0.001))
    assert message in str(info.value)


def test_a_mixture_draws_each_part_at_its_weight():
    """PBS's fits: Pareto with probability p, else exponential; the mean is the weighted mean."""
    mix = Mixture(0.25, em.Constant(0.001), em.Constant(0.003))
    rng = random.Random(1)
    draws = [mix.sample(rng) for _ in range(20_000)]
    share = draws.count(0.001) / len(draws)
    assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / len(draws))
    assert mix.mean == pytest.approx(0.0025)
    with pytest.raises(em.ConfigError, match="weight is a probability"):
        Mixture(1.5, em.Constant(0.001), em.Constant(0.002))


def test_one_distribution_as_legs_is_the_model_as_before():
    """Legs.same(leg) draws exactly what leg alone drew: every figure of the model is unchanged."""
    leg = em.LogNormal(0.002, 0.8)
    assert wars.model(3, 1, 2, leg, 3000, 4).needed == wars.model(3, 1, 2, Legs.same(leg), 3000, 4).needed


@pytest.mark.parametrize("preset", ["ymmr", "lnkd-disk"])
def test_the_model_with_four_legs_agrees_with_the_independent_one(preset):
    """A preset whose W differs from A=R=S: the model's P(stale) at t=0 and 10 ms within 4 standard errors."""
    legs = PRESETS[preset]
    computed = wars.model(3, 1, 1, legs, 40_000, 2)
    draws = {name: getattr(legs, name).sample for name in "wars"}
    for t in (0.0, 0.01):
        p = independent_wars(3, 1, 1, t, draws, 20_000, 9)
        q = computed.point(t).p_stale
        se = math.hypot(math.sqrt(q * (1 - q) / 20_000), computed.point(t).se)
        assert abs(p - q) <= 4 * se, (t, p, q)


def test_capsim_runs_legs_that_differ_by_direction():
    """W=R slower than A=S (a link direction each): capsim's WARS run agrees with the model within 4 s.e."""
    legs = parse_legs("w=exponential:4ms,r=exponential:4ms", em.Exponential(0.001))
    computed = wars.model(3, 1, 1, legs, 100_000, 1)
    for point in wars.measure(3, 1, 1, [0.0, 0.002], legs, 1500, 1):
        assert abs(wars.z_score(point, computed.point(point.t_ms / 1000))) <= 4
    assert (
        abs(computed.point(0.0).p_stale - wars.model(3, 1, 1, em.Exponential(0.001), 100_000, 1).point(0).p_stale) > 0.1
    )


def test_capsim_refuses_legs_a_link_cannot_carry():
    """W unlike R (both coordinator->replica): measure says why, and the sweep leaves capsim's WARS columns empty."""
    with pytest.raises(em.ConfigError, match="one latency per link direction"):
        wars.measure(3, 1, 1, [0.0], PRESETS["ymmr"], 10, 1)
    row = run_job((Sweep(trials=10, model_trials=2000, waits_ms=(0, 5), legs=PRESETS["ymmr"]), "quorum", (3, 1, 1)))
    assert row["wars_capsim"] == {} and row["wars"][0] > 0
