"""The scripts: bench.py reports every figure beside its baseline, and every script takes --help."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


@pytest.mark.slow  # 10-45 s: out of the default run (pyproject's slow marker); CI runs it when time allows
def test_quick_bench_prints_json_with_each_baseline():
    """--quick --json gives capsim, asyncio.Queue and SimPy figures and the scale run, the bare loop's ring too."""
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    for key in ("pingpong_msgs_per_s", "rpc_round_trips_per_s"):
        assert results[key]["capsim"] > 0 and results[key]["asyncio_queue"] > 0
    rings = results["scale"]["rings"]
    assert rings["sleep"]["delivered"] > 0 and rings["sleep"]["peak_mb"] > 0 and rings["simpy"]["delivered"] > 0
    assert rings["every"]["delivered"] == rings["sleep"]["delivered"]  # the same beats, two ways
    assert rings["floor"]["delivered"] == rings["sleep"]["delivered"]  # and as a bare heapq loop
    assert results["scale"]["floor"]["big_per_msg_ratio"] > 0
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


SCRIPTS = sorted(p for p in BENCH.parent.glob("*.py") if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_explains_itself_and_refuses_a_stray_argument_before_it_does_anything(script):
    """`--help` prints a usage and exits 0; an argument it does not know is a usage error, with no traceback.

    (readme_tables.py once rewrote README.md whatever its arguments were, --help included.)
    """
    helped = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage:") and not helped.stderr, helped.stderr
    stray = subprocess.run(
        [sys.executable, str(script), "--no-such-option"], capture_output=True, text=True, timeout=60
    )
    assert stray.returncode == 2 and "error:" in stray.stderr and "Traceback" not in stray.stderr, stray.stderr


@pytest.mark.parametrize("model", ["every", "floor"])
def test_the_scale_script_runs_one_ring_and_prints_its_windows(model):
    """scripts/bench_scale.py: a small ring's windows and its delivered count as JSON, and capsim's digest; the bare
    heapq loop (--model floor, no simulator) delivers what capsim's ring delivers in the same windows."""
    script = BENCH.parent / "bench_scale.py"
    args = ["--nodes", "20", "--model", model, "--windows", "2", "--seconds", "0.2"]
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    # two windows of 0.2 s, each after a 0.1 s re-warm, from 0.15 s: 20 nodes beat at 0.5 .. 0.7 and 0.8 .. 1.0
    assert row["delivered"] == 2 * 2 * 20 and len(row["us_per_msg_windows"]) == 2 and row["peak_mb"] > 0
    if model == "every":
        assert row["virtual_s"] == pytest.approx(0.75) and len(row["digest"]) == 64


@pytest.mark.slow  # 10-45 s: out of the default run (pyproject's slow marker); CI runs it when time allows
def test_the_pair_script_measures_this_tree_against_a_revision_and_leaves_no_worktree():
    """scripts/bench_pair.py against HEAD (the same kernel): both models at both sizes, the revision's compiled core
    built from its own sources, each ratio and the A/A control near 1, and no worktree left behind."""
    root = BENCH.parents[1]
    if subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: there is no revision to compare against")
    script = BENCH.parent / "bench_pair.py"
    args = ["HEAD", "--quick", "--rounds", "3", "--json"]
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["cores"]["other"] == report["cores"]["this"], report["cores"]  # the same core, built there
    rows = report["rows"]
    assert [(row["model"], row["nodes"]) for row in rows] == [
        ("sleep", 200),
        ("sleep", 2000),
        ("every", 200),
        ("every", 2000),
    ]
    assert all(0.25 < row["this_over_other"] < 4 and 0.25 < row["a_a"] < 4 for row in rows), rows
    worktrees = subprocess.run(["git", "-C", str(root), "worktree", "list"], capture_output=True, text=True).stdout
    assert "capsim-pair-" not in worktrees


@pytest.mark.slow  # 10-45 s: out of the default run (pyproject's slow marker); CI runs it when time allows
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_pair_script_interrupted_leaves_no_worktree_and_no_ring(how):
    """Ctrl-C or SIGTERM while the rings run: exit 130, one line, the worktree removed and every ring ended."""
    root = BENCH.parents[1]
    if subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: there is no revision to compare against")

    def worktrees() -> str:
        return subprocess.run(["git", "-C", str(root), "worktree", "list"], capture_output=True, text=True).stdout

    def rings(parent: int) -> list[int]:  # the script's ring processes: python -c RING NODES MODEL WARM_S
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True)
        found = []
        for pid in map(int, children.stdout.split()):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:  # ended meanwhile
                continue
            if argv[1:2] == [b"-c"] and argv[-2:] == [b"0.15", b""]:
                found.append(pid)
        return found

    script = BENCH.parent / "bench_pair.py"
    run = subprocess.Popen(
        [sys.executable, str(script), "HEAD", "--quick", "--rounds", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C at a terminal goes to the whole foreground group: send it so
    )
    try:
        deadline = time.monotonic() + 120
        while len(rings(run.pid)) < 12 and time.monotonic() < deadline:  # 2 models x 2 sizes x 3 trees
            time.sleep(0.1)
        started = rings(run.pid)
        assert len(started) == 12 and "capsim-pair-" in worktrees()
        os.killpg(run.pid, how)
        _out, err = run.communicate(timeout=120)
    finally:  # a failed assertion above must not leave the script running (its worktree then fails the next run)
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert "capsim-pair-" not in worktrees()
    ended = subprocess.run(["ps", "-o", "stat=", "-p", ",".join(map(str, started))], capture_output=True, text=True)
    assert all(state.startswith("Z") for state in ended.stdout.split()), ended.stdout  # gone, or a zombie for init
