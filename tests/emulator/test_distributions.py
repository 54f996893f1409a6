"""Latency distributions: validated at construction, sampled from a given stream."""

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from emulator.distributions import MAX_LATENCY, as_distribution, parse
from emulator.handles import RANGE_END


@pytest.mark.parametrize(
    "dist",
    [
        em.Constant(0.002),
        em.Uniform(0.001, 0.003),
        em.Exponential(0.002),
        em.LogNormal(0.0015, 0.5),
        em.Pareto(0.001, 3.0),
        em.Pareto(0.001, 1.5, cap=0.05),
    ],
)
def test_samples_are_non_negative_and_average_to_the_mean(dist):
    """Sample means land within 5% of the stated mean over 20,000 draws."""
    rng = random.Random(1)
    samples = [dist.sample(rng) for _ in range(20000)]
    assert min(samples) >= 0
    assert statistics.fmean(samples) == pytest.approx(dist.mean, rel=0.05)


def test_pareto_has_the_stated_tail_and_never_exceeds_its_cap():
    """A share (scale / t) ** alpha of Pareto draws exceeds t; with a cap, none exceeds it."""
    dist, rng = em.Pareto(0.001, 1.5, cap=0.05), random.Random(2)
    samples = [dist.sample(rng) for _ in range(50000)]
    assert min(samples) >= 0.001 and max(samples) == dist.cap == 0.05
    assert max(em.Pareto(0.001, 1.5).sample(rng) for _ in range(50000)) > 0.05  # uncapped by default
    for t in (0.005, 0.02):
        share = sum(s > t for s in samples) / len(samples)
        assert share == pytest.approx((0.001 / t) ** 1.5, rel=0.15)


def test_the_same_stream_gives_the_same_samples():
    """A distribution holds no rng: equal streams give equal draws."""
    dist = em.Exponential(0.01)
    assert [dist.sample(random.Random(3)) for _ in range(3)] == [dist.sample(random.Random(3)) for _ in range(3)]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: em.Constant(-1), "cannot be negative"),
        (lambda: em.Constant(math.nan), "finite"),
        (lambda: em.Uniform(-1.0, 2.0), "cannot be negative"),
        (lambda: em.Uniform(3, 1), "low <= high"),
        (lambda: em.Exponential(0), "> 0"),
        (lambda: em.LogNormal(0.001, -1), "sigma"),
        (lambda: em.Pareto(0.0, 1.5), "> 0"),
        (lambda: em.Pareto(0.001, 0), "alpha must be a finite number > 0"),
        (lambda: em.Pareto(0.01, 1.5, cap=0.001), "cap must be >= scale"),
        (lambda: em.Constant("1ms"), "number of seconds"),
        (lambda: as_distribution([1]), "distribution such as"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(make, message):
    """Negative, NaN or ill-typed parameters raise ConfigError (a ValueError) at once."""
    with pytest.raises(em.ConfigError, match=message):
        make()
    assert issubclass(em.ConfigError, ValueError)


def test_a_plain_number_is_a_constant_latency():
    """as_distribution(0.004) is Constant(0.004)."""
    dist = as_distribution(0.004)
    assert isinstance(dist, em.Constant) and dist.value == 0.004


@pytest.mark.parametrize("x_over_scale", [1.5, 3.0, 10.0])
def test_pareto_tail_is_a_power_law(x_over_scale):
    """P(X > x) = (scale / x) ** alpha for x >= scale, within 4 standard errors over 40,000 draws."""
    dist, rng, draws = em.Pareto(0.002, 1.2), random.Random(5), 40000
    expected = (1 / x_over_scale) ** 1.2
    share = sum(dist.sample(rng) > 0.002 * x_over_scale for _ in range(draws)) / draws
    assert abs(share - expected) <= 4 * math.sqrt(expected * (1 - expected) / draws)
    assert min(dist.sample(rng) for _ in range(1000)) >= 0.002


def test_pareto_mean_is_infinite_at_or_below_alpha_one():
    """The mean is alpha * scale / (alpha - 1) above alpha = 1 and infinite at or below it."""
    assert em.Pareto(0.001, 2.0).mean == pytest.approx(0.002)
    assert em.Pareto(0.001, 1.0).mean == math.inf


@pytest.mark.parametrize(
    "text, expected",
    [
        ("constant:2ms", em.Constant(0.002)),
        ("uniform:1ms:5ms", em.Uniform(0.001, 0.005)),
        ("exponential:5ms", em.Exponential(0.005)),
        ("lognormal:2ms:0.8", em.LogNormal(0.002, 0.8)),
        ("pareto:1ms:1.5", em.Pareto(0.001, 1.5)),
        ("uniform:500us:1.5s", em.Uniform(0.0005, 1.5)),
        (" Exponential:250000ns ", em.Exponential(0.00025)),
    ],
)
def test_the_text_forms_of_the_command_line(text, expected):
    """Each documented text form gives its distribution, and str() writes the form back."""
    dist = parse(text)
    assert repr(dist) == repr(expected)
    assert repr(parse(str(dist))) == repr(dist)


@pytest.mark.parametrize(
    "text, message",
    [
        ("exp:5ms", "unknown latency distribution 'exp'.*use constant:2ms"),
        ("exponential:5", "needs a unit \\(ns, us, ms or s\\)"),
        ("uniform:1ms", "uniform takes 2 parameter"),
        ("lognormal:2ms:x", "'x' in 'lognormal:2ms:x' is not a number"),
        ("pareto:1ms:0", "'pareto:1ms:0': Pareto alpha must be"),
        ("constant:-1ms", "cannot be negative"),
        ("uniform:5ms:1ms", "low <= high"),
        ("constant:infms", "must be finite"),
    ],
)
def test_a_bad_text_form_says_what_to_write(text, message):
    """A mistake in a latency text names the text and the fix."""
    with pytest.raises(em.ConfigError, match=message):
        parse(text)


_SECONDS = st.floats(min_value=1e-9, max_value=100.0, allow_nan=False)


@given(
    st.one_of(
        st.builds(em.Constant, _SECONDS),
        st.builds(lambda a, b: em.Uniform(min(a, b), max(a, b)), _SECONDS, _SECONDS),
        st.builds(em.Exponential, _SECONDS),
        st.builds(em.LogNormal, _SECONDS, st.floats(min_value=0, max_value=5)),
        st.builds(em.Pareto, _SECONDS, st.floats(min_value=0.1, max_value=10)),
    )
)
def test_every_distribution_reads_back_from_its_text_exactly(dist):
    """parse(str(d)) has exactly d's parameters, whatever they are."""
    assert repr(parse(str(dist))) == repr(dist)


@given(
    st.floats(min_value=0, max_value=10, allow_nan=False),
    st.floats(min_value=0, max_value=10, allow_nan=False),
    st.integers(min_value=0, max_value=2**32),
)
def test_a_uniform_ns_sampler_draws_what_sample_draws_in_whole_nanoseconds(a, b, seed):
    """Property: the message path's sampler (compiled when the C core runs) gives, draw for draw,
    ``round(sample * 1e9)`` from a stream in the same state: the same latencies in both modes."""
    dist = em.Uniform(min(a, b), max(a, b))
    sampler, rng = dist.ns_sampler(random.Random(seed)), random.Random(seed)
    for _ in range(5):
        drawn = sampler()
        assert type(drawn) is int and drawn == round(dist.sample(rng) * 1_000_000_000)


# -- the longest latency: MAX_LATENCY ----------------------------------------------------------------


class _Extreme(random.Random):
    """A stream whose ``random()`` is always its largest value, 1 - 2**-53, so ``1 - random()`` is its least."""

    def random(self):
        return 1 - 2**-53


class _Scripted(random.Random):
    """A stream that returns the given values first, then a seeded stream's."""

    def __init__(self, script):
        super().__init__(0)
        self.script = list(script)

    def random(self):
        return self.script.pop(0) if self.script else super().random()


def test_the_longest_latency_is_under_half_the_clocks_range():
    """MAX_LATENCY is 1e298 s, and twice it (a reordered message's most) is short of handles.RANGE_END."""
    assert MAX_LATENCY == 1e298
    assert 2 * MAX_LATENCY < RANGE_END and math.isfinite(2 * MAX_LATENCY * 1e9)


@pytest.mark.parametrize(
    "make",
    [
        lambda: em.Constant(1e300),
        lambda: em.Constant(MAX_LATENCY),
        lambda: em.Constant(10**400),  # an int past every float: no OverflowError from float()
        lambda: em.Uniform(0.0, 1e300),
        lambda: em.Exponential(1e299),
        lambda: em.LogNormal(1e299, 0.5),
        lambda: em.Pareto(1e299, 1.5),
        lambda: em.Pareto(0.001, 1.5, cap=1e300),
        lambda: as_distribution(1e300),
        lambda: parse("constant:1e300s"),
    ],
)
def test_a_latency_at_or_past_the_longest_is_refused_when_built(make):
    """A parameter of MAX_LATENCY seconds or more is a ConfigError naming the limit and what to use instead."""
    with pytest.raises(em.ConfigError, match=r"less than 1e\+298 seconds.*use loss=1\.0 or a partition"):
        make()


@pytest.mark.parametrize(
    "make", [lambda: em.Constant(math.inf), lambda: em.Uniform(0, math.inf), lambda: as_distribution(math.inf)]
)
def test_an_infinite_latency_is_refused_with_what_to_use_instead(make):
    """An infinite latency is not a message that never arrives: the error says loss or a partition is."""
    with pytest.raises(em.ConfigError, match=r"finite number of seconds, got inf; .*loss=1\.0 or a partition"):
        make()


def test_the_longest_draws_are_the_ones_the_limits_assume():
    """At the least 1 - random(), 2**-53, an exponential draw is 53 ln 2 (36.74) means and a Pareto one
    scale * 2 ** (53 / alpha); a capped Pareto's is its cap, however small alpha (it overflowed a float)."""
    assert em.Exponential(0.01).sample(_Extreme()) == pytest.approx(0.01 * 53 * math.log(2), rel=1e-12)
    assert em.Pareto(0.001, 2.0).sample(_Extreme()) == pytest.approx(0.001 * 2 ** (53 / 2.0), rel=1e-12)
    assert em.Pareto(0.001, 0.001, cap=1.0).sample(_Extreme()) == 1.0


@given(st.lists(st.floats(min_value=0, max_value=1 - 2**-53), max_size=40))
def test_a_normal_draw_is_within_12_12_sigmas(script):
    """Property: whatever random() returns, random.normalvariate (Kinderman and Monahan's method keeps z only
    if z * z / 4 <= -ln(1 - random())) is within 2 * sqrt(53 ln 2) sigmas: the bound LogNormal's limit assumes."""
    assert abs(_Scripted(script).normalvariate(0.0, 1.0)) <= 2 * math.sqrt(53 * math.log(2))


@pytest.mark.parametrize(
    "fits, too_long, message",
    [
        (
            lambda: em.Exponential(2.7e296),
            lambda: em.Exponential(2.8e296),
            r"Exponential mean must be less than 2\.72e\+296 seconds: a draw may be 36\.74 times the mean",
        ),
        (
            lambda: em.LogNormal(0.001, 57.1),
            lambda: em.LogNormal(0.001, 57.2),
            r"LogNormal sigma must be less than 57\.17 with a median of 0\.001 s",
        ),
        (
            lambda: em.Pareto(0.001, 0.054),
            lambda: em.Pareto(0.001, 0.05),
            r"Pareto\(0\.001, 0\.05\) may draw .* give it a cap, such as Pareto\(0\.001, 0\.05, cap=1\.0\), "
            r"or an alpha over 0\.05301",
        ),
    ],
)
def test_parameters_whose_longest_draw_reaches_the_limit_are_refused(fits, too_long, message):
    """Just under its bound a distribution is built and its longest draw is under MAX_LATENCY; just over, refused."""
    dist = fits()
    longest = (
        dist.sample(_Extreme())
        if not isinstance(dist, em.LogNormal)
        else dist.median * math.exp(2 * math.sqrt(53 * math.log(2)) * dist.sigma)
    )
    assert longest < MAX_LATENCY
    with pytest.raises(em.ConfigError, match=message):
        too_long()


def test_a_lognormal_whose_mean_is_past_every_float_has_an_infinite_mean():
    """LogNormal(1 ms, 50).mean is infinite (exp(1250) is past the floats: it raised OverflowError)."""
    assert em.LogNormal(0.001, 50).mean == math.inf


class _Sink(em.Node):
    def __init__(self):
        self.got = []

    async def handle_note(self, msg):
        self.got.append(self.now())


def test_the_longest_latency_allowed_is_delivered_even_reordered():
    """Messages with a latency just under MAX_LATENCY, every one reordered (rescaled by up to 2), are delivered,
    some after more than MAX_LATENCY: the time they get is in the clock's range."""
    sim = em.Simulation(seed=1, latency=em.Constant(math.nextafter(MAX_LATENCY, 0)), reorder=1.0)
    sink = sim.add_node("n0", _Sink)
    client = sim.add_client("c0")

    async def send():
        for _ in range(20):
            client.send("n0", {"type": "note"})

    sim.run(send())
    sim.run()
    assert len(sink.got) == 20 and max(sink.got) > MAX_LATENCY and not sim.errors


class _Huge(em.Distribution):
    """A distribution of one's own that draws 1e300 s."""

    def __init__(self, constant):
        self.constant = constant

    def sample(self, rng):
        return 1e300


@pytest.mark.parametrize("constant", [False, True])
def test_a_draw_past_the_limit_from_a_distribution_of_ones_own_raises_at_the_send(constant):
    """A draw of MAX_LATENCY or more (which overflowed into an OverflowError) is a ConfigError at the send."""
    sim = em.Simulation(seed=1, latency=_Huge(constant))
    sim.add_node("n0", _Sink)
    client = sim.add_client("c0")

    async def send():
        client.send("n0", {"type": "note"})

    with pytest.raises(em.ConfigError, match=r"drew a latency of 1e\+300 s, past the longest .*bound its tail"):
        sim.run(send())
