"""scripts/bench_check.py runs and prints the checker's figures beside Porcupine's reference ones."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_check.py"


def test_quick_bench_check_prints_json_beside_porcupines_figures():
    """--quick --json: the c50 and etcd rows carry Porcupine's figures and the right verdicts; memory is measured."""
    out = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    rows = {row["history"].split(" (")[0]: row for row in results["rows"]}
    assert rows["c50-ok"]["valid"] is True and rows["c50-ok"]["porcupine_s"] == 0.22
    assert rows["c50-bad"]["valid"] is False and rows["c50-bad"]["porcupine_s"] == 0.02
    assert rows["etcd logs x10"]["valid"] is True and rows["etcd logs x10"]["porcupine_s"] > 0
    assert all(row["peak_mb"] > 0 and row["valid"] for row in results["multi_key"])
    assert results["timeout"]["valid"] is None and results["timeout"]["took_s"] > 0
