"""scripts/bench.py runs and reports every figure beside its baseline."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def test_quick_bench_prints_json_with_each_baseline():
    """--quick --json gives capsim, asyncio.Queue and SimPy figures and the scale run."""
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    for key in ("pingpong_msgs_per_s", "rpc_round_trips_per_s"):
        assert results[key]["capsim"] > 0 and results[key]["asyncio_queue"] > 0
    rings = results["scale"]["rings"]
    assert rings["sleep"]["delivered"] > 0 and rings["sleep"]["peak_mb"] > 0 and rings["simpy"]["delivered"] > 0
    assert rings["every"]["delivered"] == rings["sleep"]["delivered"]  # the same beats, two ways
    assert rings["big-sleep"]["nodes"] > rings["sleep"]["nodes"] and results["sweeps"][0]["walls"]["2"] > 0
    hosts = results["hosts_http"]  # every side of the aiohttp pair, from the same run
    assert hosts["simulated_s_per_request"] > 0 and hosts["loopback_s_per_request"] > 0
    assert hosts["floor_s_per_request"] > 0


def test_cap_demo_script_runs_the_cap_command():
    """scripts/cap_demo.py runs `capsim cap` with the same options."""
    script = BENCH.parent / "cap_demo.py"
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            "--json",
            "--config",
            "cp",
            "--duration",
            "5",
            "--partition-at",
            "1",
            "--heal-at",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["config"] == "cp"
