"""Size limits: runs too big for the machine are refused before they start, with what would fit."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capsim import limits
from capsim.cli import main

ROOT = Path(__file__).resolve().parents[2]


@given(st.floats(min_value=1, max_value=1e7), st.floats(min_value=0, max_value=1e9))
def test_max_nodes_is_the_largest_size_within_the_budget(budget, operations):
    """Property: max_nodes(budget) fits and one node more does not."""
    model = limits.CAP
    fits = model.max_nodes(budget, operations)
    if fits:
        assert model.estimate_mb(fits, operations) <= budget
    assert model.estimate_mb(fits + 1, operations) > budget


def test_a_cluster_too_big_is_refused_before_it_runs(capsys):
    """capsim cap --nodes 100000: exit 2 at once, the estimate, the figures behind it, and what fits."""
    assert main(["cap", "--nodes", "100000"]) == 2
    err = capsys.readouterr().err
    assert "100000 nodes" in err and "GB of memory" in err and "measured by scripts/bench.py" in err
    fits = int(err.split("at most ")[1].split()[0])
    assert limits.CAP.estimate_mb(fits, 2400) <= limits.available_mb()


def test_a_duration_too_long_says_how_many_operations_fit():
    """A history that cannot fit names the operations that would, and the flag to lower."""
    with pytest.raises(limits.TooBig, match="history operations fit with 5 nodes: lower --duration"):
        limits.check(5, 1e12, budget_mb=4096)


@pytest.mark.parametrize("operations", [1e300, float("inf")])
def test_an_absurd_size_is_refused_in_a_line_a_person_can_read(operations):
    """A rate of 1e308 or a duration of 1e300 s: the message shows the numbers in a few characters, not 300 digits."""
    with pytest.raises(limits.TooBig) as caught:
        limits.check(3, operations, budget_mb=4096)
    message = str(caught.value)
    assert len(message) < 400, message
    assert "more than 10^15 operations" in message and "more than 10^15 GB" in message
    assert "history operations fit with 3 nodes: lower --duration" in message


def test_too_many_seeds_are_refused_with_the_number_that_fits():
    """Results of a huge sweep that would not fit in memory: refused, with a count that does."""
    with pytest.raises(limits.TooBig, match="sweep at most"):
        limits.check(5, 1000, seeds=10**9, budget_mb=4096)


def test_workers_are_lowered_to_what_fits():
    """Four workers of 1 GB runs in 2.5 GB (80% planned): two."""
    assert limits.workers_that_fit(4, 1024, budget_mb=2560) == 2
    assert limits.workers_that_fit(4, 10**6, budget_mb=2560) == 1


@pytest.mark.parametrize("nodes", [30, pytest.param(100, marks=pytest.mark.slow)])
def test_the_memory_model_fits_a_real_run(nodes):
    """A capsim cap run peaks within 10% above the model's estimate at most, and not far below it: at 30
    nodes, and at 100, where the pair term (every node's link to every other) is most of it."""
    code = (
        "import json, sys\n"
        "from capsim.cap import Plan, choose, run_config\n"
        "n = int(sys.argv[1])\n"
        "runs = [run_config(c, Plan(seed=1, nodes=n, duration=3.0, partition_at=1.0, heal_at=2.0)) "
        "for c in choose(None)]\n"
        "peak = [int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(json.dumps({'peak': peak, 'ops': max(len(r.history) for r in runs)}))\n"
    )
    out = json.loads(
        subprocess.run(
            [sys.executable, "-c", code, str(nodes)], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    )
    estimate = limits.CAP.estimate_mb(nodes, out["ops"])
    assert out["peak"] <= 1.1 * estimate and estimate <= 2.5 * out["peak"]
