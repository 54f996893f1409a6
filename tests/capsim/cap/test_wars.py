"""WARS (PBS's model) on capsim and computed, each held against an independent Monte Carlo written here."""

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from capsim.cap import wars


def independent_wars(n, r, w, t, draw, trials, seed):
    """P(stale) and its standard error, straight from the paper's description of WARS.

    Every leg is ``draw(rng)``: the write reaches replica i at W_i, its ack returns at W_i + A_i; the coordinator
    commits at the W-th ack. The read leaves at commit + t, reaches replica i at commit + t + R_i and its answer
    returns S_i later; the first R answers count, and the read is stale when each of those replicas got the read
    before the write.
    """
    rng = random.Random(seed)
    stale = 0
    for _ in range(trials):
        write_at = [draw(rng) for _ in range(n)]
        commit = sorted(at + draw(rng) for at in write_at)[w - 1]
        read_at = [commit + t + draw(rng) for _ in range(n)]
        answered_at = [at + draw(rng) for at in read_at]
        first = sorted(range(n), key=lambda i: answered_at[i])[:r]
        stale += all(read_at[i] < write_at[i] for i in first)
    p = stale / trials
    return p, math.sqrt(p * (1 - p) / trials)


def exponential(mean):
    return lambda rng: rng.expovariate(1 / mean)


def z_score(p, trials, q, se_q):
    """(p - q) over p's standard error if q is right (binomial, trials draws) combined with q's own."""
    spread = math.hypot(math.sqrt(q * (1 - q) / trials), se_q)
    return 0.0 if spread == 0 else (p - q) / spread


@pytest.mark.parametrize("quorum", [(3, 1, 1), (3, 1, 2), (5, 2, 2)])
def test_capsim_reproduces_wars_within_four_standard_errors(quorum):
    """capsim's store in WARS's setup (exponential legs, mean 5 ms) agrees with the independent model at every t."""
    times = [0.0, 0.001, 0.005, 0.010]
    points = wars.measure(*quorum, times, em.Exponential(0.005), trials=600, seed=3)
    for t, point in zip(times, points):
        expected, expected_se = independent_wars(*quorum, t, exponential(0.005), 10000, seed=11)
        assert abs(z_score(point.p_stale, point.trials, expected, expected_se)) <= 4, (quorum, t, point, expected)
    assert points[0].p_stale > 0.02 and points[0].trials == 600  # the staleness is there to be measured


@pytest.mark.parametrize(
    "leg, draw",
    [
        (em.LogNormal(0.002, 0.8), lambda rng: rng.lognormvariate(math.log(0.002), 0.8)),
        (em.Pareto(0.001, 1.5), lambda rng: 0.001 / (1 - rng.random()) ** (1 / 1.5)),
    ],
)
def test_the_computed_model_agrees_with_the_independent_one(leg, draw):
    """wars.model's P(stale) at t = 0, 1, 5, 20 ms is within 4 standard errors of the independent Monte Carlo."""
    for quorum in [(3, 1, 1), (5, 2, 2)]:
        computed = wars.model(*quorum, leg, trials=10000, seed=5)
        for t in (0.0, 0.001, 0.005, 0.020):
            point = computed.point(t)
            expected, expected_se = independent_wars(*quorum, t, draw, 10000, seed=7)
            assert abs(z_score(point.p_stale, point.trials, expected, expected_se)) <= 4, (quorum, t, point, expected)


def test_the_issue_s_lognormal_figures_are_what_wars_gives():
    """Under LogNormal(2 ms, 0.8) legs WARS gives about 0.161 / 0.062 / 0.136 / 0.014 at t=0 (Bailis's model)."""
    for quorum, figure in [((3, 1, 1), 0.161), ((3, 1, 2), 0.062), ((5, 1, 2), 0.136), ((5, 2, 2), 0.014)]:
        point = wars.model(*quorum, em.LogNormal(0.002, 0.8), trials=20000, seed=2).point(0.0)
        assert abs(point.p_stale - figure) <= 4 * point.se + 0.0015, (quorum, point.p_stale)


def test_t_visibility_is_where_p_consistent_reaches_999_per_mille():
    """At the t-visibility figure P(stale) <= 0.1%, just before it more; the independent model agrees."""
    computed = wars.model(3, 1, 1, em.Exponential(0.005), trials=40000, seed=4)
    t = computed.t_visibility()
    assert computed.point(t).p_stale <= 0.001 < computed.point(t - 1e-6).p_stale
    expected, _ = independent_wars(3, 1, 1, t, exponential(0.005), 40000, seed=8)
    assert abs(expected - 0.001) <= 4 * math.hypot(math.sqrt(0.001 * 0.999 / 40000), 0.001 / math.sqrt(40))
    assert 0.005 < t < 0.1


def test_a_strict_quorum_is_never_stale_in_wars():
    """R + W > N: a read quorum always meets the write quorum, on capsim and in the model, at t = 0."""
    assert all(p.stale == 0 for p in wars.measure(3, 2, 2, [0.0], em.Exponential(0.005), trials=300))
    assert wars.model(5, 3, 3, em.Pareto(0.001, 1.1), trials=5000).point(0.0).stale == 0
    assert wars.model(5, 3, 3, em.Pareto(0.001, 1.1), trials=5000).t_visibility() == 0.0


def test_constant_legs_are_never_stale():
    """Every leg L: the write lands at L, the read at commit + t + L >= 3L, never before it (theory: P = 0)."""
    assert wars.measure(3, 1, 1, [0.0], em.Constant(0.002), trials=200)[0].stale == 0
    assert wars.model(3, 1, 1, em.Constant(0.002), trials=1000).point(0.0).stale == 0


def test_the_coordinator_holds_no_copy_and_every_replica_gets_every_write():
    """In the WARS cluster the coordinator stores nothing; the N replicas each end up with the write."""
    sim = wars.cluster(3, 1, 1, em.Exponential(0.005), seed=1)

    async def write():
        await sim.node("writer").rpc("coordinator", {"type": "write", "key": "k", "value": 1}, timeout=None)
        await __import__("asyncio").sleep(1.0)

    sim.run(write())
    assert sim.node("coordinator").storage["data"] == {}
    assert all(sim.node(f"n{i}").storage["data"]["k"][0]["value"] == 1 for i in range(3))


def test_a_point_carries_its_standard_error():
    """se = sqrt(p (1 - p) / trials); the JSON row has n, r, w, t_ms, p_stale and se."""
    point = wars.Point(3, 1, 1, 5.0, 25, 100)
    assert point.p_stale == 0.25 and point.se == pytest.approx(math.sqrt(0.25 * 0.75 / 100))
    assert {"n", "r", "w", "t_ms", "p_stale", "se"} <= set(point.to_dict())


@pytest.mark.parametrize(
    "text, message",
    [
        ("3/1", "'3/1' is not N/R/W"),
        ("3/4/1", "1 <= R <= N and 1 <= W <= N, got N=3 R=4 W=1"),
        ("a/b/c", "is not N/R/W"),
    ],
)
def test_bad_quorums_say_what_to_write(text, message):
    """--quorums takes N/R/W,... with 1 <= R, W <= N."""
    with pytest.raises(em.ConfigError, match=message):
        wars.parse_quorums(text)


def test_times_take_units_and_a_bare_zero():
    """--t 0,500us,5ms,0.1s is in seconds; a number without a unit is refused."""
    assert wars.parse_times("0,500us,5ms,0.1s") == [0.0, 0.0005, 0.005, 0.1]
    with pytest.raises(em.ConfigError, match="--t: '5' is not a duration"):
        wars.parse_times("0,5")


@pytest.mark.slow
@pytest.mark.parametrize(
    "leg, draw",
    [  # exponential legs: the default run's test above
        (em.LogNormal(0.002, 0.8), lambda rng: rng.lognormvariate(math.log(0.002), 0.8)),
        (em.Pareto(0.001, 1.5), lambda rng: 0.001 / (1 - rng.random()) ** (1 / 1.5)),
    ],
)
def test_capsim_reproduces_wars_under_every_latency_shape(leg, draw):
    """Four partial quorums, four times each, 2000 trials a point: every |z| <= 4."""
    times = [0.0, 0.001, 0.005, 0.010]
    for quorum in [(3, 1, 1), (3, 2, 1), (5, 1, 2), (5, 2, 2)]:
        for t, point in zip(times, wars.measure(*quorum, times, leg, trials=2000, seed=9)):
            expected, expected_se = independent_wars(*quorum, t, draw, 20000, seed=13)
            assert abs(z_score(point.p_stale, point.trials, expected, expected_se)) <= 4, (quorum, t, point, expected)


def _binomial_below(n, q, k):
    """P(Binomial(n, q) < k), term by term (each term in log space, so n may be large)."""
    head = math.lgamma(n + 1)
    return sum(
        math.exp(head - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(q) + (n - i) * math.log1p(-q))
        for i in range(max(0, k))
    )


@given(n=st.integers(1, 120), q=st.sampled_from([0.01, 0.1, 0.5, 0.9, 0.99, 0.999]))
def test_quantile_ranks_are_the_widest_tails_the_binomial_allows(n, q):
    """low is the largest rank with P(B < low) <= 2.5%, high the smallest with P(B >= high) <= 2.5%, B ~ Bin(n, q)."""
    low, high = wars.quantile_ranks(n, q, 0.95)
    tail = 0.025
    assert 0 <= low < high <= n + 1
    assert _binomial_below(n, q, low) <= tail + 1e-12
    assert low == n or _binomial_below(n, q, low + 1) > tail - 1e-12
    assert 1 - _binomial_below(n, q, high) <= tail + 1e-12
    assert high == 1 or 1 - _binomial_below(n, q, high - 1) > tail - 1e-12


def test_the_quantile_interval_covers_the_true_quantile_as_often_as_it_claims():
    """Over 300 seeds of 5,000 uniform draws, [X(low), X(high)] holds the 0.998 quantile (0.998 itself) at the
    binomial coverage the ranks give (at least 95%), within three standard errors of that rate."""
    n, q, seeds = 5_000, 0.998, 300
    low, high = wars.quantile_ranks(n, q, 0.95)
    claimed = _binomial_below(n, q, high) - _binomial_below(n, q, low)
    covered = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        draws = sorted(rng.random() for _ in range(n))
        covered += draws[low - 1] <= q < draws[high - 1]
    assert claimed >= 0.95
    assert abs(covered / seeds - claimed) <= 3 * math.sqrt(claimed * (1 - claimed) / seeds)


def test_t_visibility_intervals_of_the_reviewers_seeds_meet_a_long_run_s():
    """The 99.9% t of 3/2/1 under the default lognormal legs, from 50,000 trials at seeds 1-3 (3.1, 3.2 and 3.8 ms,
    0.7 ms apart): each interval holds its own t and meets 3.43-3.55 ms, the interval of a 2,000,000-trial run
    (seed 99: 3.49 ms), which holds the true t with 95% confidence."""
    for seed in (1, 2, 3):
        computed = wars.model(3, 2, 1, em.LogNormal(0.002, 0.8), 50_000, seed)
        low, high = computed.t_visibility_interval()
        assert low <= computed.t_visibility() <= high
        assert low <= 0.00355 and high >= 0.00343


def test_too_few_trials_leave_the_interval_open_above():
    """With 1,000 trials the 99.9% t has no order statistic above it: the interval's top is inf, None in rows."""
    computed = wars.model(3, 1, 1, em.LogNormal(0.002, 0.8), 1000, 1)
    assert computed.t_visibility_interval()[1] == math.inf
    assert wars.visibility(computed)["visible_999_high_ms"] is None


@pytest.mark.slow
def test_the_long_run_the_readme_quotes():
    """The README: for 3/2/1, a 2,000,000-trial run (seed 99) gives 3.49 (3.43-3.55) ms."""
    computed = wars.model(3, 2, 1, em.LogNormal(0.002, 0.8), 2_000_000, 99)
    low, high = computed.t_visibility_interval()
    assert [round(1000 * x, 2) for x in (computed.t_visibility(), low, high)] == [3.49, 3.43, 3.55]
