"""The linearizability checker beside Porcupine's published figures, on the shapes of issue 10.

    python scripts/bench_check.py            # a table
    python scripts/bench_check.py --json     # the same figures as JSON
    python scripts/bench_check.py --quick    # smaller sizes and timeouts

Porcupine (Go) is not run here: its figures are the reference ones from a
2-core machine (c50-ok 0.22 s, c50-bad 0.02 s, all 102 etcd logs 0.63 s), and
they were measured on Porcupine's own files. Ours are measured on histories
of the same shape made by :mod:`emulator.check.synth` (c50: 50 clients over
10 keys; c50-bad: one key whose violation no checker refutes in minutes and
one refuted at its first read; 102 etcd-style Jepsen logs), and on etcd_100,
the one real Porcupine log capsim ships. Each row gives wall seconds and CPU
seconds of this process (the machine may be shared: CPU time is the fairer
figure), configurations explored and the verdict. The multi-key rows show
time and peak memory growing with length, the timeout row how closely a
timeout is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emulator.check import check_file, examples, linearizable, synth
from emulator.check.synth import Shape

ROOT = Path(__file__).resolve().parents[1]
PORCUPINE = {"c50-ok": 0.22, "c50-bad": 0.02, "etcd logs x102": 0.63}
"""Porcupine's figures (seconds, 2 cores) on its own files, from issue 10."""


def timed(name: str, history, model: str | None, timeout: float, reference: float | None = None) -> dict:
    """Check one history; wall and CPU seconds, configurations, verdict."""
    wall, cpu = time.perf_counter(), time.process_time()  # wall-clock ok: a benchmark
    verdict = linearizable(history, model=model, timeout=timeout)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu  # wall-clock ok
    row = {"history": name, "ops": len(verdict.ops), "keys": len(verdict.partitions), "valid": verdict.valid,
           "wall_s": wall, "cpu_s": cpu, "explored": sum(p.explored for p in verdict.partitions),
           "timeout_s": timeout, "porcupine_s": reference}
    if reference:
        row["vs_porcupine"] = cpu / reference
    return row


def etcd_logs(count: int, timeout: float) -> dict:
    """102 etcd-shaped Jepsen logs (tabs and spaces), read and checked one after another."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for seed in range(count):
            path = Path(tmp) / f"etcd_{seed:03d}.log"
            path.write_text(synth.etcd_log(ops=300, seed=seed))
            paths.append(path)
        wall, cpu = time.perf_counter(), time.process_time()  # wall-clock ok
        verdicts = [check_file(p, timeout=timeout) for p in paths]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu  # wall-clock ok
    ref = PORCUPINE["etcd logs x102"] * count / 102
    return {"history": f"etcd logs x{count} (synthetic, 300 ops)", "ops": sum(len(v.ops) for v in verdicts),
            "keys": count, "valid": all(v.valid for v in verdicts), "wall_s": wall, "cpu_s": cpu,
            "explored": sum(p.explored for v in verdicts for p in v.partitions), "timeout_s": timeout,
            "porcupine_s": ref, "vs_porcupine": cpu / ref}


def memory(ops: int) -> dict:
    """Peak memory of a child process that generates and checks a 100-key history of ``ops`` ops."""
    code = (
        "import time\n"
        "def kb(field):\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(field))\n"
        "from emulator.check import linearizable\n"
        "from emulator.check.synth import Shape, history\n"
        "base = kb('VmRSS')\n"
        f"h = history(Shape(ops={ops}, in_flight=10, keys=100, seed=2))\n"
        "made = kb('VmRSS')\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        "v = linearizable(h, model='cas_register')\n"
        "print(v.valid, time.perf_counter() - t, time.process_time() - c, base / 1024, made / 1024, kb('VmHWM') / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout.split()
    valid, wall, cpu, base, made, peak = out[0] == "True", *map(float, out[1:])
    return {"history": f"100 keys, {ops:,} ops", "ops": ops, "keys": 100, "valid": valid, "wall_s": wall,
            "cpu_s": cpu, "history_mb": made - base, "peak_mb": peak, "check_mb": peak - made,
            "us_per_op": 1e6 * cpu / ops}


def timeout_kept(limit: float) -> dict:
    """A history no checker decides in time, with a timeout: how long it really took."""
    h = synth.c50(bad=True, ops=400)
    only_hard = [op for op in h if op.get("key") == "0"]
    wall = time.perf_counter()  # wall-clock ok
    verdict = linearizable(only_hard, model="kv", timeout=limit)
    wall = time.perf_counter() - wall  # wall-clock ok
    return {"timeout_s": limit, "took_s": wall, "over_pct": 100 * (wall - limit) / limit, "valid": verdict.valid}


def partition_run(quick: bool) -> dict | None:
    """A capsim chaos run of lin-kv under partitions, about 7,000 ops, checked split by key."""
    scenario = (ROOT / "scenarios" / "lin-kv-partitions.toml").read_text()
    rate = 40 if quick else 280
    scenario = scenario.replace("rate = 50 ", f"rate = {rate} ")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.toml"
        path.write_text(scenario)
        done = subprocess.run([sys.executable, "-m", "capsim.cli", "chaos", str(path), "--out", tmp],
                              capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        history = Path(tmp) / "history.jsonl"
        if not history.exists():
            return None
        from emulator.check import read_history

        ops = read_history(history)
    return timed("capsim lin-kv partition run", ops, None, 60.0)


def run(quick: bool) -> dict:
    """Every figure; ``quick`` shrinks sizes and timeouts for a smoke run."""
    limit = 2.0 if quick else 30.0
    n = 2000 if quick else 10_000
    in_flights = (3, 10) if quick else (3, 5, 10, 30)
    rows = [
        timed("c50-ok (synthetic shape)", synth.c50(bad=False), "kv", limit, PORCUPINE["c50-ok"]),
        timed("c50-bad (synthetic structure)", synth.c50(bad=True), "kv", limit, PORCUPINE["c50-bad"]),
        etcd_logs(10 if quick else 102, limit),
        timed("etcd_100.log (Porcupine's file)", _read("jepsen-etcd-100-good"), None, limit),
        timed("volatile: register, 100 procs, 9 in flight", synth.volatile(2000), "register", limit),
    ]
    for in_flight in in_flights:
        for share in (0.0, 0.05):
            shape = Shape(ops=n, in_flight=in_flight, timeouts=share, seed=1)
            rows.append(timed(f"cas-register {n:,} ops, {in_flight} in flight, {share:.0%} timeouts",
                              synth.history(shape), "cas_register", limit))
    run_row = partition_run(quick)
    if run_row:
        rows.append(run_row)
    sizes = (5_000, 10_000) if quick else (25_000, 50_000, 100_000)
    return {"python": sys.version.split()[0], "rows": rows, "multi_key": [memory(s) for s in sizes],
            "timeout": timeout_kept(0.5 if quick else 5.0), "porcupine_reference_s": PORCUPINE}


def _read(name: str):
    from emulator.check import read_history

    return read_history(examples.path(name))


def print_table(results: dict) -> None:
    """Print the figures as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    table = Table(title="linearizability checker vs Porcupine's reference figures (Porcupine: its own files, 2 cores)")
    for column in ("history", "ops", "keys", "verdict", "wall s", "CPU s", "configurations", "Porcupine s", "CPU / Porcupine"):
        table.add_column(column, justify="left" if column == "history" else "right")
    for row in results["rows"]:
        verdict = {True: "linearizable", False: "NOT", None: f"unknown ({row['timeout_s']:.0f} s)"}[row["valid"]]
        ref = row.get("porcupine_s")
        table.add_row(row["history"], f"{row['ops']:,}", str(row["keys"]), verdict, f"{row['wall_s']:.3f}",
                      f"{row['cpu_s']:.3f}", f"{row['explored']:,}", "-" if not ref else f"{ref:.2f}",
                      "-" if not ref else f"{row['vs_porcupine']:.1f}x")
    console.print(table)
    multi = Table(title="multi-key histories split by key: time and memory against length (child process)")
    for column in ("history", "verdict", "wall s", "CPU s", "CPU µs / op", "MB for the history", "MB more for the check", "peak MB"):
        multi.add_column(column, justify="left" if column == "history" else "right")
    for row in results["multi_key"]:
        multi.add_row(row["history"], str(row["valid"]), f"{row['wall_s']:.2f}", f"{row['cpu_s']:.2f}",
                      f"{row['us_per_op']:.0f}", f"{row['history_mb']:.0f}", f"{row['check_mb']:.0f}",
                      f"{row['peak_mb']:.0f}")
    console.print(multi)
    t = results["timeout"]
    console.print(f"timeout kept: a {t['timeout_s']:.0f} s limit on a history no checker decides took "
                  f"{t['took_s']:.3f} s ({t['over_pct']:+.1f}%), verdict {t['valid']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    results = run(args.quick)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
