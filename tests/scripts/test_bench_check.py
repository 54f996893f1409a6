"""scripts/bench_check.py runs and prints the checker's figures beside Porcupine's reference ones."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_check.py"


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
    assert all(row["peak_mb"] > 0 and row["valid"] for row in results["multi_key"])
    (kept,) = results["timeouts"]
    assert kept["timeout_s"] == 1.0 and kept["valid"] is None and kept["took_s"] > 0
    assert len(results["load"]) == 3
