"""The linearizability checker beside Porcupine, on the histories of issue 10.

    python scripts/bench_check.py            # tables
    python scripts/bench_check.py --json     # the same figures as JSON
    python scripts/bench_check.py --quick    # smaller sizes and timeouts

Porcupine (Go) is not run here. Its figures are the reference ones from a
2-core machine, measured on its own files: c50-ok 0.22 s, c50-bad 0.02 s, all
102 etcd logs 0.63 s (so 6.2 ms a log). The first table times capsim on
Porcupine's own c50-bad and on eight of its etcd logs (the files in
tests/emulator/check/data and the shipped etcd_100), and on histories of the
same shapes where the file is not shipped (c50-ok; 102 etcd-shaped logs).
Every row gives wall and CPU seconds of this process (the machine may be
shared: CPU time is the fairer figure), the configurations explored and the
verdict beside the one expected. Reading the file is not counted, as
Porcupine's figures count only its check; the read time is shown apart.

The second table runs the register and cas-register shapes (10,000 ops, 3 to
30 in flight, 0 or 5% timeouts) and, beside each, Porcupine's algorithm itself
(scripts/wgl_reference.py, in Python over the same compiled steps). Both are
capped at 2,000,000 steps (200,000 with --quick); capsim's wall-clock limit,
120 s (20 s), is a safety net only, so its verdicts do not depend on the
machine's load. The configurations each explores is the machine-independent
comparison. Valid histories come first. Then cas-register histories made
invalid ("bad", by emulator.check.synth.corrupt, 90% of the way in), with a
column "by" saying what decided capsim's verdict:

- "unwritten": one read returns a value never written. capsim refutes it by
  a look at the reads (emulator.check.triage), in the key's first turn;
  Porcupine's search has no such look. A second row, "search alone", checks
  the same history with triage=False: capsim's search against Porcupine's
  (the reference figures are the same run's).
- "overwritten": one read returns a value written before and overwritten
  since, which no look at the reads decides in these histories: capsim as
  shipped, its search against Porcupine's. Without timeouts only: with them
  a timed-out write of every value may still land.

The last tables show time and peak memory of 100-key histories against
their length, and how closely a timeout is kept (a 1 s and a 5 s limit).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from wgl_reference import reference_check  # noqa: E402

from emulator.check import examples, linearizable, read_history, synth  # noqa: E402
from emulator.check.linearizable import prepare_partition  # noqa: E402
from emulator.check.models import get_model  # noqa: E402
from emulator.check.ops import by_key, pair_ops  # noqa: E402
from emulator.check.synth import Shape  # noqa: E402

PORCUPINE = {"c50-ok": 0.22, "c50-bad": 0.02, "etcd logs x102": 0.63}
"""Porcupine's figures (seconds, 2 cores) on its own files, from issue 10."""
DATA = ROOT / "tests" / "emulator" / "check" / "data"
ETCD_REAL = {
    "etcd_000.log": False,
    "etcd_001.log": False,
    "etcd_002.log": True,
    "etcd_005.log": True,
    "etcd_007.log": True,
    "etcd_101.log": True,
    "etcd_102.log": True,
}
"""Porcupine's etcd logs shipped as test data, with the verdicts its own tests state."""
INVALID = ((3, 0.0), (10, 0.0), (3, 0.05))
"""(in flight, timeouts) of the cas-register shapes made invalid by a read of a value never written."""
OVERWRITTEN = (3, 10, 30)
"""In flight, in the cas-register shapes (no timeouts) made invalid by a read of an overwritten value."""


def timed(
    name: str,
    history,
    model: str | None,
    timeout: float,
    expected: bool | None,
    reference: float | None = None,
    read_s: float | None = None,
) -> dict:
    """Check one history; wall and CPU seconds, configurations, verdict."""
    wall, cpu = time.perf_counter(), time.process_time()  # wall-clock ok: a benchmark
    verdict = linearizable(history, model=model, timeout=timeout)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu  # wall-clock ok
    return _row(name, [verdict], wall, cpu, timeout, expected, reference, read_s)


def c50_bad_file(timeout: float) -> dict | None:
    """Porcupine's own c50-bad (gunzipped from the test data), read then checked."""
    packed = DATA / "porcupine" / "c50-bad.txt.gz"
    if not packed.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c50-bad.txt"
        path.write_bytes(gzip.decompress(packed.read_bytes()))
        cpu = time.process_time()  # wall-clock ok
        history = read_history(path)
        read_s = time.process_time() - cpu  # wall-clock ok
    return timed("c50-bad (Porcupine's file)", history, "kv", timeout, False, PORCUPINE["c50-bad"], read_s)


def etcd_real(timeout: float) -> dict:
    """Porcupine's etcd logs that capsim has (test data and the shipped etcd_100), under its etcd model."""
    paths = [(DATA / "porcupine" / name, valid) for name, valid in ETCD_REAL.items()]
    paths.append((examples.path("jepsen-etcd-100-good"), True))
    histories = [(read_history(path), valid) for path, valid in paths]
    wall, cpu = time.perf_counter(), time.process_time()  # wall-clock ok
    verdicts = [linearizable(h, model="porcupine-etcd", timeout=timeout) for h, _ in histories]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu  # wall-clock ok
    ref = PORCUPINE["etcd logs x102"] * len(paths) / 102
    row = _row(f"etcd logs x{len(paths)} (Porcupine's files)", verdicts, wall, cpu, timeout, None, ref)
    row["valid"] = all(v.valid is ok for v, (_, ok) in zip(verdicts, histories))  # every verdict as expected
    row["expected"] = True
    return row


def etcd_shaped(count: int, timeout: float) -> dict:
    """Etcd-shaped Jepsen logs (5 clients, values 0-4, timeouts; tabs and spaces), checked one after another."""
    with tempfile.TemporaryDirectory() as tmp:
        histories = []
        for seed in range(count):
            path = Path(tmp) / f"etcd_{seed:03d}.log"
            path.write_text(synth.etcd_log(ops=300, seed=seed))
            histories.append(read_history(path))
    wall, cpu = time.perf_counter(), time.process_time()  # wall-clock ok
    verdicts = [linearizable(h, timeout=timeout) for h in histories]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu  # wall-clock ok
    ref = PORCUPINE["etcd logs x102"] * count / 102
    return _row(f"etcd logs x{count} (their shape, 300 ops)", verdicts, wall, cpu, timeout, True, ref)


def _row(name, verdicts, wall, cpu, timeout, expected, reference, read_s=None) -> dict:
    valids = [v.valid for v in verdicts]
    valid = False if False in valids else (None if None in valids else True)
    row = {
        "history": name,
        "ops": sum(len(v.ops) for v in verdicts),
        "keys": sum(len(v.partitions) for v in verdicts),
        "valid": valid,
        "expected": expected,
        "wall_s": wall,
        "cpu_s": cpu,
        "explored": sum(p.explored for v in verdicts for p in v.partitions),
        "timeout_s": timeout,
        "porcupine_s": reference,
        "read_s": read_s,
    }
    if reference:
        row["vs_porcupine"] = cpu / reference
    return row


def versus_reference(
    shape: Shape,
    corruption: str | None,
    timeout: float,
    cap: int,
    triage: bool = True,
    reference: dict | None = None,
) -> dict:
    """capsim and Porcupine's algorithm, each capped at ``cap`` steps, on one register shape.

    ``timeout`` (wall seconds) is capsim's safety net only: its budget is the
    steps, so its verdict is the same at any load. ``corruption``: None
    (valid), or a :func:`emulator.check.synth.corrupt` kind
    (``"unwritten"``, ``"overwritten"``). ``triage=False`` checks with
    capsim's search alone. ``reference``: a row of the same history whose
    reference figures to reuse instead of running it again.
    """
    history = synth.history(shape)
    if corruption:
        history = synth.corrupt(history, where=0.9, seed=shape.seed, kind=corruption)
    cpu = time.process_time()  # wall-clock ok
    verdict = linearizable(history, model=shape.model, timeout=timeout, steps=cap, triage=triage)
    cpu = time.process_time() - cpu  # wall-clock ok
    if reference is None:
        model = get_model(shape.model)
        ops, _ = pair_ops(history)
        ref = reference_check({key: prepare_partition(model, group) for key, group in by_key(ops).items()}, model, cap)
        reference = {"ref_valid": ref["valid"], "ref_explored": ref["explored"], "ref_steps": ref["steps"]}
        reference.update(ref_cpu_s=ref["cpu_s"], ref_cap=cap)
    label = f"{shape.model}, {shape.in_flight} in flight, {shape.timeouts:.0%} timeouts"
    label += {None: "", "unwritten": ", bad: unwritten", "overwritten": ", bad: overwritten"}[corruption]
    return {
        "shape": label + ("" if triage else ", search alone"),
        "corruption": corruption,
        "triage": triage,
        "ops": shape.ops,
        "expected": corruption is None,
        "valid": verdict.valid,
        "by": next((p.refuted_by for p in verdict.partitions if p.refuted_by), None),
        "cpu_s": cpu,
        "timeout_s": timeout,
        "steps": cap,
        "timed_out": verdict.valid is None and verdict.elapsed >= timeout,
        "explored": sum(p.explored for p in verdict.partitions),
        **{k: reference[k] for k in ("ref_valid", "ref_explored", "ref_steps", "ref_cpu_s", "ref_cap")},
    }


def invalid_rows(shapes: list[Shape], overwritten: list[Shape], timeout: float, cap: int) -> list[dict]:
    """The invalid rows: each unwritten read as shipped and by the search alone, then the overwritten values."""
    rows = []
    for shape in shapes:
        shipped = versus_reference(shape, "unwritten", timeout, cap)
        rows += [shipped, versus_reference(shape, "unwritten", timeout, cap, triage=False, reference=shipped)]
    return rows + [versus_reference(shape, "overwritten", timeout, cap) for shape in overwritten]


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
        "print(v.valid, time.perf_counter() - t, time.process_time() - c,"
        " base / 1024, made / 1024, kb('VmHWM') / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    ).stdout.split()
    valid, wall, cpu, base, made, peak = out[0] == "True", *map(float, out[1:])
    return {
        "history": f"100 keys, {ops:,} ops",
        "ops": ops,
        "keys": 100,
        "valid": valid,
        "wall_s": wall,
        "cpu_s": cpu,
        "history_mb": made - base,
        "peak_mb": peak,
        "check_mb": peak - made,
        "us_per_op": 1e6 * cpu / ops,
    }


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
        subprocess.run(
            [sys.executable, "-m", "capsim.cli", "chaos", str(path), "--out", tmp],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        history = Path(tmp) / "history.jsonl"
        if not history.exists():
            return None
        ops = read_history(history)
    return timed("capsim lin-kv partition run", ops, None, 60.0, None)


def run(quick: bool) -> dict:
    """Every figure; ``quick`` shrinks sizes and timeouts for a smoke run."""
    load = os.getloadavg()  # the machine may be shared: the figures say how busy it was
    limit = 2.0 if quick else 30.0
    n = 2000 if quick else 10_000
    rows = [
        timed("c50-ok (its shape)", synth.c50(bad=False), "kv", limit, True, PORCUPINE["c50-ok"]),
        c50_bad_file(limit)
        or timed("c50-bad (its structure)", synth.c50(bad=True), "kv", limit, False, PORCUPINE["c50-bad"]),
        etcd_real(limit),
        etcd_shaped(10 if quick else 102, limit),
        timed("volatile: register, 100 procs, 9 in flight", synth.volatile(2000), "register", limit, True),
    ]
    run_row = partition_run(quick)
    if run_row:
        rows.append(run_row)
    shapes = []
    for model in ("cas_register", "register"):
        for in_flight in (3, 10) if quick else (3, 5, 10, 30):
            for share in (0.0, 0.05):
                shapes.append(Shape(ops=n, in_flight=in_flight, timeouts=share, model=model, seed=1))
    cap, limit_versus = (200_000, 20.0) if quick else (2_000_000, 120.0)
    versus = [versus_reference(shape, None, limit_versus, cap) for shape in shapes]
    unwritten = [Shape(ops=n, in_flight=k, timeouts=share, model="cas_register", seed=1) for k, share in INVALID]
    overwritten = [Shape(ops=n, in_flight=k, model="cas_register", seed=1) for k in OVERWRITTEN[: 2 if quick else 3]]
    versus += invalid_rows(unwritten, overwritten, limit_versus, cap)
    sizes = (5_000, 10_000) if quick else (25_000, 50_000, 100_000)
    return {
        "python": sys.version.split()[0],
        "load": load,
        "rows": rows,
        "versus_reference": versus,
        "multi_key": [memory(s) for s in sizes],
        "timeouts": [timeout_kept(t) for t in ((1.0,) if quick else (1.0, 5.0))],
        "porcupine_reference_s": PORCUPINE,
    }


def print_table(results: dict) -> None:
    """Print the figures as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(160, Console().width))
    table = Table(title="capsim beside Porcupine's figures (Go, 2 cores, its own files; check time, reading apart)")
    for column in (
        "history",
        "ops",
        "keys",
        "verdict",
        "wall s",
        "CPU s",
        "configurations",
        "Porcupine s",
        "CPU / Porcupine",
        "read s",
    ):
        table.add_column(column, justify="left" if column == "history" else "right")
    for row in results["rows"]:
        ref, read = row.get("porcupine_s"), row.get("read_s")
        table.add_row(
            row["history"],
            f"{row['ops']:,}",
            str(row["keys"]),
            _verdict(row),
            f"{row['wall_s']:.3f}",
            f"{row['cpu_s']:.3f}",
            f"{row['explored']:,}",
            "-" if not ref else f"{ref:.3f}",
            "-" if not ref else f"{row['vs_porcupine']:.1f}x",
            "-" if read is None else f"{read:.3f}",
        )
    console.print(table)
    versus = Table(title="capsim beside Porcupine's algorithm (scripts/wgl_reference.py, Python, same steps)")
    for column in (
        "shape",
        "ops",
        "verdict",
        "by",
        "CPU s",
        "configurations",
        "reference verdict",
        "reference configurations",
        "reference CPU s",
    ):
        versus.add_column(column, justify="left" if column == "shape" else "right", no_wrap=column == "shape")
    for row in results["versus_reference"]:
        ref = {True: "linearizable", False: "NOT", None: f"unknown ({row['ref_cap']:,} steps)"}[row["ref_valid"]]
        versus.add_row(
            row["shape"],
            f"{row['ops']:,}",
            _verdict(row),
            row["by"] or "-",
            f"{row['cpu_s']:.3f}",
            f"{row['explored']:,}",
            ref,
            f"{row['ref_explored']:,}",
            f"{row['ref_cpu_s']:.3f}",
        )
    console.print(versus)
    multi = Table(title="multi-key histories split by key: time and memory against length (child process)")
    for column in (
        "history",
        "verdict",
        "wall s",
        "CPU s",
        "CPU µs / op",
        "MB for the history",
        "MB more for the check",
        "peak MB",
    ):
        multi.add_column(column, justify="left" if column == "history" else "right")
    for row in results["multi_key"]:
        multi.add_row(
            row["history"],
            str(row["valid"]),
            f"{row['wall_s']:.2f}",
            f"{row['cpu_s']:.2f}",
            f"{row['us_per_op']:.0f}",
            f"{row['history_mb']:.0f}",
            f"{row['check_mb']:.0f}",
            f"{row['peak_mb']:.0f}",
        )
    console.print(multi)
    for t in results["timeouts"]:
        console.print(
            f"timeout kept: a {t['timeout_s']:.1f} s limit on a history no checker decides took "
            f"{t['took_s']:.3f} s ({t['over_pct']:+.1f}%), verdict {t['valid']}"
        )
    load = results.get("load")
    if load:
        console.print(f"load average when the checker figures started: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")


def _verdict(row: dict) -> str:
    budget = f"{row['steps']:,} steps" if row.get("steps") and not row.get("timed_out") else f"{row['timeout_s']:.0f} s"
    text = {True: "linearizable", False: "NOT", None: f"unknown ({budget})"}[row["valid"]]
    expected = row.get("expected")
    return text if expected is None or row["valid"] is expected else f"{text} (expected {expected})"


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
