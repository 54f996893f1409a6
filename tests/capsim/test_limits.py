"""Size limits: runs too big for the machine are refused before they start, with what would fit."""

import json
import re
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


def _history_file(path, lines, pad=0):
    """A capsim JSON Lines history of ``lines`` lines over 100 keys, each op ``pad`` bytes longer."""
    with open(path, "w") as out:
        for i in range(lines // 2):
            for kind in ("invoke", "ok"):
                op = {"process": i % 10, "type": kind, "f": "write", "key": i % 100, "value": i, "time": 2 * i}
                out.write(json.dumps(op | ({"note": "x" * pad} if pad else {})) + "\n")
    return path


def test_a_history_too_large_for_the_memory_is_refused_with_what_to_do(tmp_path):
    """check_history: over 80% of the budget is refused, naming the lines, the figures and a part that fits."""
    path = _history_file(tmp_path / "h.jsonl", 20_000)
    need = limits.HISTORY.estimate_mb(20_000, path.stat().st_size)
    assert limits.check_history(path, budget_mb=need / 0.8 + 1) == need
    with pytest.raises(limits.TooBig, match=r"its 20,000 lines \(.*\) need about .* kB a line.*head -n ") as info:
        limits.check_history(path, budget_mb=need)
    fits = int(re.search(r"head -n (\d+)", str(info.value)).group(1))
    assert 0 < fits < 20_000


def test_a_gzip_history_or_a_missing_file_is_not_estimated(tmp_path):
    """check_history gives 0 for what it cannot count (gzip, a missing file): reading it says the rest."""
    path = tmp_path / "h.jsonl.gz"
    path.write_bytes(b"\x1f\x8b" + b"\0" * 100)
    assert limits.check_history(path, budget_mb=1) == 0
    assert limits.check_history(tmp_path / "none.jsonl", budget_mb=1) == 0


def test_lines_are_counted_with_a_last_line_without_a_break(tmp_path):
    """A file's lines: its line breaks, and one more when it does not end in one."""
    path = tmp_path / "h"
    for text, lines in [("a\nb\n", 2), ("a\nb", 2), ("\n", 1), ("x", 1)]:
        path.write_text(text)
        assert limits._lines_of(path) == (lines, len(text))


def test_an_address_space_limit_lowers_the_memory_available():
    """``ulimit -v``: available_mb is at most what is left under the limit, as a MemoryError would come there."""
    code = (
        "import resource\n"
        "from capsim import limits\n"
        "vm = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize:')][0]\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 300 * 2**20, resource.RLIM_INFINITY))\n"
        "print(limits.available_mb())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert 200 < float(out) <= 300


@pytest.mark.parametrize("lines, pad", [(200_000, 0), pytest.param(100_000, 500, marks=pytest.mark.slow)])
def test_the_history_memory_model_is_at_or_above_a_real_check(tmp_path, lines, pad):
    """capsim check --steps 1 peaks at most at the HISTORY estimate, and not far below it: JSON Lines of short
    ops (lines weigh most), and of 500-byte ops (bytes weigh most)."""
    path = _history_file(tmp_path / "h.jsonl", lines, pad)
    code = (
        "import sys\n"
        "from capsim.cli import main\n"
        "main(['check', '--steps', '1', sys.argv[1]])\n"
        "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    peak = float(run.stdout.splitlines()[-1])
    estimate = limits.HISTORY.estimate_mb(lines, path.stat().st_size)
    assert peak <= estimate <= 1.5 * peak
