"""scripts/bench_check.py runs and prints the checker's figures beside Porcupine's reference ones."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_check.py"


@pytest.mark.slow  # 10-45 s: out of the default run (pyproject's slow marker); CI runs it when time allows
def test_quick_bench_check_prints_json_beside_porcupines_figures():
    """--quick --json: Porcupine's files and shapes get the right verdicts beside its figures.

    The reference runs; memory is measured.
    """
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    rows = {row["history"].split(" (")[0]: row for row in results["rows"]}
    assert rows["c50-ok"]["valid"] is True and rows["c50-ok"]["porcupine_s"] == 0.22
    assert rows["c50-bad"]["valid"] is False and rows["c50-bad"]["porcupine_s"] == 0.02
    assert rows["etcd logs x10"]["valid"] is True and rows["etcd logs x10"]["porcupine_s"] > 0
    assert rows["c50-bad"]["history"] == "c50-bad (Porcupine's file)" and rows["c50-bad"]["read_s"] > 0
    assert rows["etcd logs x8"]["valid"] is True  # each of Porcupine's eight logs gets the verdict its tests state
    versus = results["versus_reference"]
    assert all(row["ref_explored"] > 0 and row["ref_valid"] in (row["expected"], None) for row in versus)
    assert all(row["valid"] is row["expected"] for row in versus if row["ref_valid"] is not None)
    bad = [row for row in versus if row["corruption"]]
    shipped = [row for row in bad if row["corruption"] == "unwritten" and row["triage"]]
    alone = [row for row in bad if not row["triage"]]
    overwritten = [row for row in bad if row["corruption"] == "overwritten"]
    assert len(shipped) == len(alone) == 3 and len(overwritten) == 2 and len(bad) == 8
    # the unwritten read is refuted by the look at the reads, in the key's first turn of 1,024 steps
    assert all(row["valid"] is False and row["by"] == "unwritten read" and row["explored"] <= 1024 for row in shipped)
    # its "search alone" row checks the same history with the look off, beside the same reference run
    for one, other in zip(shipped, alone):
        assert other["shape"] == one["shape"] + ", search alone" and other["by"] in ("search", "relaxed search", None)
        assert (other["ref_explored"], other["ref_valid"]) == (one["ref_explored"], one["ref_valid"])
    # no look at the reads decides the overwritten value: the search does, or nothing within the steps
    assert all(row["by"] in ("search", None) and row["valid"] is not True for row in overwritten)
    assert all(row["steps"] == row["ref_cap"] == 200_000 and not row["timed_out"] for row in versus)
    assert all(row["peak_mb"] > 0 and row["valid"] for row in results["multi_key"])
    (kept,) = results["timeouts"]
    assert kept["timeout_s"] == 1.0 and kept["valid"] is None and kept["took_s"] > 0
    assert len(results["load"]) == 3
