"""Tests of capsim/cap/pacelc_limits.py: a PACELC sweep's memory and time, estimated before it runs."""

import pytest

from capsim import limits
from capsim.cap.pacelc_limits import check, trial_kb, trials_of


def test_a_sweep_that_fits_gets_its_plan():
    """600 trials at 7 t values of 3/1/1 fit in 2 GB: the plan counts exact-W, the store's and WARS's trials."""
    plan = check(((3, 1, 1), (3, 2, 2)), ("sync",), 7, 600, 50_000, budget_mb=2048)
    assert plan.trials == (600 + 2 * 7 * 600) + (600 + 7 * 600) + 7 * 600
    assert 37 < plan.run_mb < 100 and plan.seconds > 0


def test_too_many_trials_are_refused_with_the_trials_that_fit():
    """--trials 10**8: one line with the estimate, what is available, and the --trials that fits, checked."""
    with pytest.raises(limits.TooBig) as info:
        check(((3, 1, 1),), (), 7, 100_000_000, 50_000, budget_mb=8192)
    text = str(info.value)
    assert "100,000,000 trials at each of 7 t values on a 3-node store" in text and "\n" not in text
    assert "8.0 GB available" in text and "GB of memory" in text
    fits = int(text.split("pass --trials ")[1].split()[0])
    check(((3, 1, 1),), (), 7, fits, 50_000, budget_mb=8192)
    with pytest.raises(limits.TooBig):
        check(((3, 1, 1),), (), 7, fits + 1, 50_000, budget_mb=8192)


def test_too_many_model_trials_are_refused_naming_model_trials():
    """A WARS model too big on its own asks for fewer --model-trials, not fewer --trials."""
    with pytest.raises(limits.TooBig, match=r"pass --model-trials \d+ or fewer"):
        check(((3, 1, 1),), (), 7, 600, 10**10, budget_mb=8192)


def test_a_trial_costs_more_on_a_bigger_store_and_wars_runs_wars_only():
    """A trial's key is on every replica; --wars runs WARS's trials at each t and nothing else."""
    assert trial_kb(30) > trial_kb(3) > 1
    assert trials_of((3, 1, 1), 4, 10, wars_only=True) == 40 == trials_of(None, 4, 10)
    assert trials_of((3, 2, 2), 4, 10) == 10 + 40
