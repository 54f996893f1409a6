"""Tests of capsim/commands/chaos.py: a scenario in virtual time or on real processes, its summary and exit codes,
seed ranges, usage errors, and Ctrl-C or SIGTERM at any moment of a real run."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capsim.cli import main
from capsim.commands.chaos import _fault_text
from emulator.transport.processes import running
from faults import load_scenario, run_chaos
from tests.common.imports import SOCKET_LAYER, modules_after, modules_at_fork
from tests.common.processes import processes_mentioning

ROOT = str(Path(__file__).resolve().parents[3])
EXAMPLES = Path(ROOT) / "scenarios"

BROKEN = """
    name = "local-kv under partitions"
    seed = 2
    checks = ["linearizable", "stale-reads"]

    [cluster]
    protocol = "tests.common.faults_nodes:LocalKV"
    nodes = 3

    [workload]
    clients = 3
    rate = 60
    keys = 2
    timeout = 0.3
    duration = 6.0

    [[faults.steps]]
    at = 1.0
    kind = "partition"
    duration = 3.0
    shape = "halves"
"""


#: 3 lin-kv nodes; n2 is cut off from the leader n0 from 0.5 s to 1.5 s.
PARTITIONED = """
    name = "lin-kv, n2 cut off"
    seed = 4
    checks = ["linearizable", "stale-reads", "lost-writes", "availability", "node-errors"]

    [cluster]
    protocol = "{protocol}"
    nodes = 3

    [workload]
    clients = 3
    rate = 60
    keys = 2
    timeout = 0.25
    duration = 2.5

    [[faults.steps]]
    at = 0.5
    kind = "partition"
    duration = 1.0
    groups = [["n0", "n1"], ["n2"]]
"""


def _scenario_file(tmp_path, text: str, **fields) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(textwrap.dedent(text).format(**fields), encoding="utf-8")
    return str(path)


# -- in virtual time ---------------------------------------------------------------------------------


def test_the_cli_runs_an_example_and_exits_zero(tmp_path, capsys):
    """capsim chaos <example> --out DIR: exit 0, a summary with ops, faults and checks, and the three files."""
    out = tmp_path / "out"
    assert main(["chaos", str(EXAMPLES / "lin-kv-flaky-network.toml"), "--seed", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for word in ("Operations", "Faults applied", "Checks", "latency", "linearizable", "PASSED", "--seed 4"):
        assert word in text
    assert {p.name for p in out.iterdir()} == {"history.jsonl", "trace.jsonl", "summary.json"}


def test_out_refuses_to_write_over_an_earlier_run(tmp_path, capsys):
    """A second run into the same --out wrote over the first's history (a failing seed's evidence): exit 2, one line
    naming the files, and the first run's files as they were. A sweep's seed directories the same; --resume may."""
    out = tmp_path / "out"
    path = str(EXAMPLES / "lin-kv-flaky-network.toml")
    assert main(["chaos", path, "--seed", "4", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["chaos", path, "--seed", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds an earlier run's history.jsonl, summary.json, trace.jsonl" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (out / "seed-2").mkdir()
    assert main(["chaos", path, "--seeds", "1-2", "--jobs", "1", "--out", str(out)]) == 2
    assert "holds an earlier run's seed-2, which" in capsys.readouterr().err
    assert main(["chaos", path, "--seeds", "1-2", "--jobs", "1", "--out", str(out), "--resume"]) == 0
    assert (out / "seed-1" / "summary.json").exists()


def test_the_cli_exits_one_when_a_check_fails_and_explains_why(tmp_path, capsys):
    """A failing check: exit 1, FAILED, the checker's explanation and the command that replays the run."""
    path = _scenario_file(tmp_path, BROKEN)
    assert main(["chaos", path]) == 1
    text = capsys.readouterr().out
    assert "FAILED" in text and "NOT linearizable" in text and "longest linearizable prefix" in text
    assert f"capsim chaos {path} --seed 2" in text


def test_a_bad_scenario_exits_two_with_the_file_and_key_and_no_traceback(tmp_path, capsys):
    """A scenario error prints 'capsim chaos: error: <file>: <key>: expected ..., found ...' and exits 2."""
    path = _scenario_file(tmp_path, BROKEN.replace("rate = 60", "rate = -5"))
    assert main(["chaos", path]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"capsim chaos: error: {path}: workload.rate: expected a number > 0, found -5"


@pytest.mark.parametrize(
    "argv", [["--seeds", "5-2"], ["--seeds", "x"], ["--seed", "1", "--seeds", "1-2"], ["--jobs", "0", "--seeds", "1-2"]]
)
def test_bad_arguments_exit_two(tmp_path, capsys, argv):
    """An inverted or malformed range, --seed with --seeds, or zero workers: a usage error, exit 2."""
    with pytest.raises(SystemExit) as caught:
        main(["chaos", str(EXAMPLES / "lin-kv-crashes.toml"), *argv])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and err.startswith("capsim chaos: error: ") and err.count("\n") == 1


def test_a_missing_or_runtime_bad_scenario_exits_two(tmp_path, capsys):
    """A file that is not there, or a fault that cannot start (isolate-primary, no primary): exit 2, no traceback."""
    assert main(["chaos", str(tmp_path / "nope.toml")]) == 2
    path = _scenario_file(tmp_path, BROKEN.replace('shape = "halves"', 'shape = "isolate-primary"'))
    assert main(["chaos", path]) == 2
    err = capsys.readouterr().err
    assert "nope.toml: file: expected a readable scenario file" in err and "isolate-primary" in err
    assert "Traceback" not in err


def test_a_seed_range_runs_in_worker_processes_and_lists_failing_seeds(tmp_path, capsys):
    """--seeds 2-3 --jobs 2 on the broken store: exit 1, a line per failing seed with its replay command,
    and each seed's digest in DIR/seed-N equals an in-process run's."""
    path = _scenario_file(tmp_path, BROKEN.replace("duration = 6.0", "duration = 4.0"))
    out = tmp_path / "out"
    assert main(["chaos", path, "--seeds", "2-3", "--jobs", "2", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    text = captured.out
    assert "2/2" in captured.err and "0 of 2 seeds passed" in text
    for seed in (2, 3):
        assert f"capsim chaos {path} --seed {seed}" in text
        summary = json.loads((out / f"seed-{seed}" / "summary.json").read_text())
        assert summary["digest"] == run_chaos(load_scenario(path), seed=seed).sim.trace_digest()


def test_a_passing_seed_range_exits_zero(capsys):
    """--seeds on a correct store, in this process (--jobs 1): exit 0 and every seed passed."""
    assert main(["chaos", str(EXAMPLES / "lin-kv-crashes.toml"), "--seeds", "1-2", "--jobs", "1"]) == 0
    assert "2 of 2 seeds passed" in capsys.readouterr().out


def _line(seed: int, status: str) -> dict:
    counts = {"ok": 10, "fail": 0, "info": 1}
    line = {"seed": seed, "status": status, "replay": f"capsim chaos x --seed {seed}"}
    if status in ("pass", "fail"):
        return {**line, "counts": counts, "faults": 2, "failed": ["linearizable"] if status == "fail" else []}
    return {**line, "error": f"RuntimeError: seed {seed}\nTraceback ..."}


def test_a_long_sweep_that_passed_prints_no_empty_failing_seeds_table():
    """Above 20 seeds only failing ones get a row; when none failed no 'Failing seeds' table, only the count."""
    from rich.console import Console

    from capsim.commands.chaos import report_sweep

    console = Console(record=True, width=100)
    assert report_sweep(console, [_line(seed, "pass") for seed in range(25)]) == 0
    text = console.export_text()
    assert "Failing seeds" not in text and "┃ seed" not in text
    assert text.strip() == "25 of 25 seeds passed"
    console = Console(record=True, width=100)
    assert report_sweep(console, [_line(seed, "fail" if seed == 7 else "pass") for seed in range(25)]) == 1
    assert "Failing seeds" in console.export_text()


@pytest.mark.parametrize("status", ["error", "crashed"])
def test_a_seed_that_raised_or_crashed_exits_1_as_the_help_says(status):
    """A sweep with a seed whose run raised (or whose worker died) exits 1, and chaos --help says so for status 1."""
    from rich.console import Console

    from capsim.cli import EXIT_STATUS
    from capsim.commands.chaos import report_sweep

    lines = [_line(1, "pass"), _line(2, status)]
    assert report_sweep(Console(record=True, width=100), lines) == 1
    assert "a seed's run raised or its worker process died" in EXIT_STATUS["chaos"][1]


#: A phase after the traffic stops asks for availability: no op is invoked in it, so that check cannot tell.
QUIET = """
    name = "{protocol} then a quiet phase"
    seed = 3
    checks = {checks}

    [cluster]
    protocol = "{protocol}"
    nodes = 3

    [workload]
    clients = 3
    rate = 60
    keys = 2
    timeout = 0.3
    duration = 2.0

    [[phases]]
    name = "busy"
    duration = 2.0
    [phases.faults]
    kinds = ["partition"]
    interval = 0.5
    duration = [0.5, 1.0]
    shapes = ["halves"]

    [[phases]]
    name = "quiet"
    duration = 1.0
    heal = true
    [phases.checks]
    availability = {{ min = 0.9 }}
"""


@given(st.lists(st.sampled_from([True, False, None]), max_size=6))
def test_a_runs_verdict_merges_its_checks_as_jepsen_merges_valid(passed):
    """false beats unknown beats true (Jepsen's merge-valid): a check that could not tell never makes a FAIL."""
    from capsim.commands.chaos import verdict
    from faults.checks import CheckResult

    checks = [CheckResult(f"c{i}", p, "") for i, p in enumerate(passed)]
    expected = "fail" if False in passed else "unknown" if None in passed else "pass"
    assert verdict(checks) == expected
    assert (verdict(checks) == "pass") == run_passed(checks)


def run_passed(checks) -> bool:
    """ChaosResult.passed, the exit status's source, on these checks."""
    from faults.chaos import ChaosResult

    return ChaosResult.passed.fget(type("R", (), {"checks": checks})())


def test_a_check_that_could_not_tell_makes_the_run_unknown_not_failed(tmp_path, capsys):
    """No op in the quiet phase: availability is unknown, the run UNKNOWN (exit 1), never FAILED; a failed check
    besides it makes the run FAILED."""
    path = _scenario_file(tmp_path, QUIET, protocol="lin-kv", checks='["linearizable"]')
    assert main(["chaos", path]) == 1
    text = capsys.readouterr().out
    assert "UNKNOWN" in text and "FAILED" not in text and "PASSED" not in text
    assert re.search(r"availability\s+│\s+quiet\s+│\s+unknown", text)
    path = _scenario_file(
        tmp_path, QUIET, protocol="tests.common.faults_nodes:LocalKV", checks='["linearizable", "stale-reads"]'
    )
    assert main(["chaos", path]) == 1
    text = capsys.readouterr().out
    assert "FAILED" in text and "UNKNOWN" not in text


def test_a_sweep_counts_a_seed_that_could_not_tell_as_unknown_and_resumes_it(tmp_path, capsys):
    """--seeds over the quiet phase: every seed unknown (not failed) in the table, the count, each line and the
    results file, which --resume reads back."""
    path = _scenario_file(tmp_path, QUIET, protocol="lin-kv", checks='["linearizable"]')
    results = tmp_path / "results.jsonl"
    argv = ["chaos", path, "--seeds", "1-2", "--jobs", "1", "--results", str(results)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    text, progress = captured.out, captured.err  # the bar on stderr: stdout holds the results alone
    assert "0 failed, 0 crashed, 2 unknown" in progress and "0 failed, 0 crashed" not in text
    assert "0 of 2 seeds passed (2 unknown)" in text and "FAIL" not in text and "failed" not in text
    assert text.count("UNKNOWN") == 2
    for seed in (1, 2):
        assert f"seed {seed} could not tell availability (quiet) (trace digest " in text
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(line["status"], line["failed"], line["unknown"]) for line in lines] == [
        ("unknown", [], ["availability (quiet)"])
    ] * 2
    for line in lines:  # every seed's digest in the results file, the one its line below the table shows
        assert f"seed {line['seed']} could not tell availability (quiet) (trace digest {line['digest'][:16]})" in text
    assert main([*argv, "--resume"]) == 1
    assert "0 of 2 seeds passed (2 unknown)" in capsys.readouterr().out


def _digest(text: str) -> str:
    return re.search(r"trace digest ([0-9a-f]{16})", text).group(1)


def _run_as_printed(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a printed ``capsim ...`` command line through the shell, as a user pastes it (capsim: this Python's)."""
    assert command.startswith("capsim chaos ")
    line = f"{shlex.quote(sys.executable)} -m {command}"
    env = {**os.environ, "PYTHONPATH": ROOT, "COLUMNS": "200"}
    return subprocess.run(line, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_failing_seeds_replay_command_run_as_printed_replays_it_with_the_same_digest(tmp_path, capsys, monkeypatch):
    """A sweep of a scenario in a directory whose name has a space: each failing seed's printed command, pasted
    into a shell, fails the same checks with the trace digest the sweep printed; so does a single run's."""
    where = tmp_path / "my scenarios"
    where.mkdir()
    (where / "broken.toml").write_text(textwrap.dedent(BROKEN.replace("duration = 6.0", "duration = 3.0")))
    monkeypatch.chdir(tmp_path)
    assert main(["chaos", "my scenarios/broken.toml", "--seeds", "2-3", "--jobs", "1"]) == 1
    text = capsys.readouterr().out
    printed = re.findall(r"^seed (\d+) failed (.+) \(trace digest ([0-9a-f]{16})\): (.+)$", text, re.MULTILINE)
    assert [seed for seed, *_ in printed] == ["2", "3"]
    for seed, failed, digest, command in printed:
        assert command == f"capsim chaos 'my scenarios/broken.toml' --seed {seed}"
        replayed = _run_as_printed(command, tmp_path)
        assert replayed.returncode == 1, replayed.stderr
        assert "FAILED" in replayed.stdout and _digest(replayed.stdout) == digest
        for check in failed.split(", "):
            assert re.search(rf"{check}\s+│\s+all\s+│\s+FAIL", replayed.stdout)
        again = re.search(r"replay: (.+)$", replayed.stdout, re.MULTILINE).group(1)
        assert again == command and _digest(_run_as_printed(again, tmp_path).stdout) == digest


def _recount(history: list[dict]) -> dict:
    """Per f: ok / fail / info from the raw history.jsonl, paired here (an op never completed counts as info)."""
    rows: dict = {}
    open_ops: dict = {}
    for op in history:
        if op["process"] == "nemesis":
            continue
        if op["type"] == "invoke":
            open_ops[op["process"]] = op
            continue
        invoke = open_ops.pop(op["process"])
        assert op["f"] == invoke["f"]
        rows.setdefault(op["f"], {"ok": 0, "fail": 0, "info": 0})[op["type"]] += 1
    for invoke in open_ops.values():
        rows.setdefault(invoke["f"], {"ok": 0, "fail": 0, "info": 0})["info"] += 1
    return rows


def test_the_printed_figures_are_the_raw_historys(tmp_path, capsys):
    """Every fault at once (duplication and reordering included): the operations table, the faults table, the
    header's counts and digest and summary.json are recounted from history.jsonl, not from the
    result; the stale-read checker's count of ok reads is the table's plus the reads answered 'key does not
    exist', which the table's caption gives."""
    out = tmp_path / "out"
    assert main(["chaos", "lin-kv-every-fault", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    rows = _recount(history)
    printed = {
        f: dict(zip(("ok", "fail", "info", "total"), map(int, numbers)))
        for f, *numbers in re.findall(r"│ (\w+) +│ +(\d+) │ +(\d+) │ +(\d+) │ +(\d+) │", text)
    }
    total = {kind: sum(row[kind] for row in rows.values()) for kind in ("ok", "fail", "info")}
    assert printed == {
        **{f: {**row, "total": sum(row.values())} for f, row in rows.items()},
        "all": {**total, "total": sum(total.values())},
    }
    assert summary["by_f"] == rows and summary["counts"] == total
    started: dict = {}
    for op in history:
        if op["process"] == "nemesis" and op["f"].startswith("start-"):
            started[op["f"].removeprefix("start-")] = started.get(op["f"].removeprefix("start-"), 0) + 1
    faults = text[text.index("Faults applied") : text.index("Checks")]
    assert {kind: int(n) for kind, n in re.findall(r"^│ (\w+) +│ +(\d+) │", faults, re.MULTILINE)} == started
    assert f"{sum(started.values())} faults" in text and summary["faults"] == started
    missing = sum(
        1 for op in history if op["type"] == "fail" and op["f"] == "read" and (op.get("error") or [None])[0] == 20
    )
    assert missing > 0 and f"fail includes {missing} read(s) answered 'key does not exist'" in text
    reads = int(re.search(r"stale of (\d+) ok reads", " ".join(text.split())).group(1))
    assert reads == rows["read"]["ok"] + missing
    assert summary["digest"].startswith(_digest(text)) and len(summary["digest"]) == 64
    assert f"{summary['virtual_time']:.1f} s of virtual time" in text


def test_a_flapping_partition_is_printed_with_the_number_of_its_cuts(tmp_path, capsys):
    """The faults table names a flapping partition's first cut and says how many cuts it made, as its history has
    them (one start-partition, then a cut-partition for each later cut)."""
    out = tmp_path / "out"
    assert main(["chaos", "primary-replica-leader-faults", "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    shown = [op["value"] for op in history if op["f"] == "start-partition"][:3]  # the table's examples
    flapping = [value["id"] for value in shown if "flap" in value]
    assert flapping
    for ident in flapping:
        cuts = 1 + sum(1 for op in history if op["f"] == "cut-partition" and op["value"]["id"] == ident)
        assert cuts > 3 and f"flapping: {cuts} cuts" in text
    assert text.count("flapping:") == len(flapping)


def test_membership_changes_are_printed_as_the_joins_and_leaves_the_history_records(tmp_path, capsys):
    """The faults table's membership examples name each change's node and kind, as its history has them."""
    out = tmp_path / "out"
    assert main(["chaos", "sharded-kv-membership", "--seed", "1", "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    shown = [op["value"] for op in history if op["f"] == "start-membership"][:3]  # the table's examples
    assert len(shown) == 3 and all(value["change"] in ("join", "leave") for value in shown)
    row = "; ".join(f"{value['node']} {value['change']}s" for value in shown)
    assert f"│ {row} │" in text and "links" not in text


def test_a_membership_step_with_nothing_to_change_is_printed_as_no_change():
    """A membership step that found no server to join or leave says so (its value has no node)."""
    assert _fault_text({"change": None, "node": None, "members": ["n0"]}, {}) == "no change"
    assert _fault_text({"change": "leave", "node": "n2", "members": ["n0", "n2"]}, {}) == "n2 leaves"


def test_names_in_a_scenario_are_printed_as_written_not_read_as_markup(tmp_path, capsys, monkeypatch):
    """A scenario, phase or directory name with brackets ('[/]' closes a rich style) is printed as it is: it was a
    MarkupError traceback, and a cell like '[b]' vanished."""
    where = tmp_path / "runs [b]"
    where.mkdir()
    text = textwrap.dedent(QUIET).format(protocol="lin-kv", checks='["linearizable"]')
    text = text.replace('name = "lin-kv then a quiet phase"', 'name = "lin-kv [/] [red]test"')
    (where / "s.toml").write_text(text.replace('name = "quiet"', 'name = "quiet [b]"'))
    monkeypatch.chdir(tmp_path)
    assert main(["chaos", "runs [b]/s.toml"]) == 1
    assert main(["chaos", "runs [b]/s.toml", "--seeds", "1-2", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "lin-kv [/] [red]test  (runs [b]/s.toml, seed 3)" in out
    assert re.search(r"│ availability │ quiet \[b\] │ unknown │", out)
    assert "replay: capsim chaos 'runs [b]/s.toml' --seed 3" in out
    assert "seed 1 could not tell availability (quiet [b]) (trace digest " in out and "│ unknown: availability" in out


#: What a simulated chaos run never uses: the socket layer (hosts run unmodified asyncio programs; a scenario's
#: nodes do not) and the checker's readers, HTML timeline and history generators (it checks what it recorded).
UNUSED = SOCKET_LAYER | {
    "emulator.check.readers",
    "emulator.check.timeline",
    "emulator.check.synth",
    "emulator.check.examples",
}


def test_a_simulated_run_imports_neither_the_socket_layer_nor_the_history_readers():
    """One seed, and a sweep's parent up to its fork (what every worker starts with), import none of UNUSED."""
    scenario = "capsim/scenarios/lin-kv-partitions.toml"
    [at_fork] = modules_at_fork("chaos", scenario, "--seeds", "1-2", "--workers", "2")
    assert not UNUSED & at_fork
    assert not UNUSED & modules_after("chaos", scenario, "--seed", "1")


def test_a_sweep_forks_its_workers_before_it_imports_rich():
    """rich (console, progress bar, tables) is the parent's alone: imported after the fork, so no worker waits on it."""
    [at_fork] = modules_at_fork("chaos", "capsim/scenarios/lin-kv-partitions.toml", "--seeds", "1-2", "--workers", "2")
    assert not {name for name in at_fork if name == "rich" or name.startswith("rich.")}


# -- on real processes -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """Node processes can import the test node classes."""
    monkeypatch.setenv("PYTHONPATH", ROOT)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _during(ops: list[dict], start: float, stop: float, nodes: set) -> list[str]:
    """Completion types of the client ops sent to ``nodes`` and invoked within ``[start, stop)``."""
    invoked, types = {}, []
    for op in ops:
        if op["process"] == "nemesis":
            continue
        if op["type"] == "invoke":
            invoked[op["process"]] = op
        elif op["process"] in invoked:
            first = invoked.pop(op["process"])
            if first["node"] in nodes and start <= first["time"] < stop:
                types.append(op["type"])
    return types


# -- on processes, from the command line -----------------------------------------------------


def test_a_real_run_records_judges_and_shows_the_partition_and_leaves_nothing_running(tmp_path, capsys):
    """--real on lin-kv: ops and faults in the history, checks pass, n2's ops fail while it is cut off;
    no process left."""
    out = tmp_path / "out"
    status = main(["chaos", "--real", _scenario_file(tmp_path, PARTITIONED, protocol="lin-kv"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "3 lin-kv processes up" in printed and "PASSED" in printed and "not replayable" in printed
    history = _read_jsonl(out / "history.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    start, stop = [op["time"] for op in history if op["f"] in ("start-partition", "stop-partition")]
    assert 0.5 <= start < 1.0 and 0.9 < stop - start < 1.5  # the schedule plays in real seconds
    checks = {c["name"]: c["verdict"] for c in summary["checks"]}
    assert checks == dict.fromkeys(
        ["linearizable", "stale-reads", "lost-writes", "availability", "node-errors"], "pass"
    )
    assert summary["real"] and summary["faults"] == {"partition": 1} and summary["verdict"] == "PASSED"
    # How many ops a closed-loop workload completes in 2.5 real seconds is the machine's speed (60-80
    # here, 44 on two cores shared with other test runs), so the counts are judged against the ops the
    # history holds, not against a number: the summary counts them all, and most of them succeeded.
    counts = summary["counts"]
    invoked = [op for op in history if op["process"] != "nemesis" and op["type"] == "invoke"]
    completed = _during(history, 0.0, float("inf"), {"n0", "n1", "n2"})
    assert sum(counts.values()) == len(invoked) and counts["ok"] == completed.count("ok")
    assert counts["ok"] > counts["fail"] + counts["info"]
    # Nodes apply a fault (and the heal) a few ms after it is recorded, and a busy machine may
    # deliver a request late: judge the ops invoked well inside the partition.
    before = _during(history, 0.0, start, {"n0", "n1", "n2"})
    cut_off = _during(history, start + 0.1, stop - 0.1, {"n2"})
    majority = _during(history, start + 0.1, stop - 0.1, {"n0", "n1"})
    after = _during(history, stop + 0.1, 10.0, {"n2"})
    assert "ok" in before and cut_off and "ok" not in cut_off
    assert majority.count("ok") > len(majority) / 2 and "ok" in after
    statuses = json.loads((out / "statuses.json").read_text())
    assert [s["name"] for s in statuses] == ["n0", "n1", "n2"]
    assert not any(running(s["pid"]) for s in statuses) and processes_mentioning(str(tmp_path)) == []


def test_a_failed_check_on_real_processes_exits_1(tmp_path, capsys):
    """A store that is wrong on purpose (local reads, fire-and-forget replication) fails its checks: exit 1."""
    path = _scenario_file(tmp_path, PARTITIONED, protocol="tests.common.faults_nodes:LocalKV")
    status = main(["chaos", "--real", path, "--time-scale", "0.6", "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    failed = {c["name"] for c in summary["checks"] if c["verdict"] != "pass"}
    assert status == 1 and "FAILED" in printed and "--time-scale 0.6" in printed
    assert failed & {"linearizable", "stale-reads"}
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "1-3"], "one seed at a time"),
        (["--jobs", "2"], "--jobs goes with --seeds"),
    ],
)
def test_real_runs_take_one_seed(tmp_path, capsys, args, message):
    """--real with a seed range or workers is a usage error: exit 2, said plainly, nothing started."""
    path = _scenario_file(tmp_path, PARTITIONED, protocol="lin-kv")
    assert main(["chaos", "--real", path, *args]) == 2
    assert message in capsys.readouterr().err


def test_time_scale_goes_with_real_and_must_be_positive(tmp_path, capsys):
    """--time-scale without --real, or not > 0, is a usage error (exit 2)."""
    path = _scenario_file(tmp_path, PARTITIONED, protocol="lin-kv")
    assert main(["chaos", path, "--time-scale", "0.5"]) == 2
    assert "--time-scale goes with --real" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["chaos", "--real", path, "--time-scale", "0"])
    assert exited.value.code == 2 and "expected a number > 0" in capsys.readouterr().err


def test_a_bad_scenario_is_exit_2_without_a_traceback_or_a_process(tmp_path, capsys):
    """A scenario that does not load stops --real before any node starts: exit 2, the key named."""
    path = tmp_path / "bad.toml"
    path.write_text('[cluster]\nprotocol = "lin-kv"\nnodes = 0\n[workload]\nduration = 1.0\n')
    assert main(["chaos", "--real", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cluster.nodes" in err and "Traceback" not in err
    assert main(["chaos", "--real", str(tmp_path / "missing.toml")]) == 2
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 130)])
def test_an_interrupted_real_run_stops_every_node(tmp_path, sig, code):
    """Ctrl-C (or SIGTERM) in the middle of a run: exit 130 and no node process left behind."""
    path = _scenario_file(tmp_path, PARTITIONED, protocol="lin-kv")
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsim", "chaos", "--real", path, "--time-scale", "4", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    pids, status = [], None
    try:
        line = proc.stdout.readline()
        pids = [int(pid) for pid in re.findall(r"pid (\d+)", line)]
        if len(pids) == 3 and all(running(pid) for pid in pids):
            proc.send_signal(sig)
            status = proc.wait(timeout=20)
    finally:
        leftovers = _stop_for_good(proc, str(tmp_path))
    assert len(pids) == 3, line + proc.stderr.read()
    assert status == code and leftovers == [] and not any(running(pid) for pid in pids)


def _stop_for_good(proc: subprocess.Popen, workdir: str) -> list[int]:
    """End the run and any node it left (so a failure does not leak processes); returns the nodes it left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
    leftovers = processes_mentioning(workdir)
    for pid in leftovers:
        os.killpg(pid, signal.SIGKILL)
    return leftovers


@pytest.mark.slow
def test_every_fault_kind_applies_to_real_processes(tmp_path, capsys):
    """The every-fault tour at 0.2x: all eight kinds start and stop on processes, lin-kv stays linearizable."""
    out = tmp_path / "out"
    status = main(
        ["chaos", "--real", str(EXAMPLES / "lin-kv-every-fault.toml"), "--time-scale", "0.2", "--out", str(out)]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert status == 0, capsys.readouterr().out
    assert set(summary["faults"]) == {"partition", "crash", "pause", "clock", "latency", "loss", "duplicate", "reorder"}
    assert all(entry["stop"] is not None for entry in summary["fault_log"])
    assert summary["control_errors"] == 0 and processes_mentioning(str(tmp_path)) == []


# -- signals during start-up ---------------------------------------------------------------------

SCENARIO = textwrap.dedent("""
    name = "lin-kv, n2 cut off"
    seed = 4
    checks = ["linearizable"]

    [cluster]
    protocol = "lin-kv"
    nodes = 3

    [workload]
    clients = 3
    rate = 60
    keys = 2
    timeout = 0.25
    duration = 2.5

    [[faults.steps]]
    at = 0.5
    kind = "partition"
    duration = 1.0
    groups = [["n0", "n1"], ["n2"]]
""")


def _nodes(proc, out: Path) -> list[int]:
    """The node processes of the run (every process naming ``out`` but capsim itself)."""
    return [pid for pid in processes_mentioning(str(out)) if pid != proc.pid]


def _before_the_first_node(proc, out: Path) -> bool:
    """capsim has checked --out (its handlers are in place) and no node process exists yet."""
    return out.exists() and not _nodes(proc, out)


def _while_nodes_start(proc, out: Path) -> bool:
    """A node process exists: the launch is under way (nodes starting, health checks)."""
    return bool(_nodes(proc, out))


#: moments of start-up, each a test of what capsim is doing (polled every few ms), and whether to
#: wait for the line that announces the nodes as well
POINTS = {
    "before the first node starts": (_before_the_first_node, False),
    "while the nodes start": (_while_nodes_start, False),
    "as the run starts": (None, True),
}


def _run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsim", "chaos", "--real", str(path), "--time-scale", "4", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    return proc, out


def _wait_for(test, proc, out: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not test(proc, out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("point", POINTS)
def test_a_signal_at_any_moment_of_start_up_exits_130_and_leaves_no_node(tmp_path, point, sig):
    """Ctrl-C (or SIGTERM) before, during and right after the launch: exit 130, every node stopped."""
    if sig == signal.SIGTERM and point == "before the first node starts":
        pytest.skip("SIGTERM is taken over with the nodes; before them it ends the process as usual")
    test, announced = POINTS[point]
    proc, out = _run(tmp_path)
    seen: list[int] = []
    try:
        if test is not None:
            _wait_for(test, proc, out)
        if announced:
            line = proc.stdout.readline()
            assert "processes up" in line, line + proc.stderr.read()
        seen = _nodes(proc, out)
        assert proc.poll() is None, "the run ended before the signal: " + proc.stderr.read()
        proc.send_signal(sig)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        leftovers = _nodes(proc, out)
        for pid in leftovers:
            os.killpg(pid, signal.SIGKILL)
    err = proc.stderr.read()
    assert status == 130, err
    assert "capsim: interrupted" in err and "Traceback" not in err
    assert leftovers == [] and not any(running(pid) for pid in seen)


def test_ctrl_c_midway_through_a_real_run_keeps_the_history_recorded_so_far(tmp_path):
    """--real cannot be replayed: Ctrl-C two seconds into the run writes OUT/history.jsonl with what was recorded
    (it wrote only the node logs), says so in a line, exits 130, and leaves no node."""
    proc, out = _run(tmp_path)  # 2.5 s of scenario at time scale 4: 10 s of real time
    try:
        line = proc.stdout.readline()
        assert "processes up" in line, line + proc.stderr.read()
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert status == 130 and "capsim: interrupted" in err, err
    kept = (out / "history.jsonl").read_text().splitlines()
    assert kept and any('"type": "ok"' in line for line in kept)
    assert f"interrupted: the {len(kept)} events recorded so far are in {out / 'history.jsonl'}" in err
    assert _nodes(proc, out) == []


def test_a_config_the_protocol_refuses_as_it_starts_is_a_usage_error_before_the_run(tmp_path, capsys):
    """primary-replica acks = 100 on 3 nodes: every node refused it in on_start, and the run went on to fail on node
    errors; the command now starts the servers for an instant first, and says so in one line naming cluster.config."""
    path = tmp_path / "acks.toml"
    path.write_text(
        '[cluster]\nprotocol = "primary-replica"\nnodes = 3\nconfig = { mode = "semi-sync", acks = 100 }\n'
        "[workload]\nclients = 2\nrate = 20\nkeys = 2\nduration = 1.0\n"
    )
    assert main(["chaos", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert f"{path}: cluster.config: n0 refused it as it started: ConfigError: semi-sync acks=100" in err


@pytest.mark.parametrize(
    "scenario, words",
    [
        ("primary-replica-leader-faults", "phase 'leader' aims faults at the leader, and a real run cannot ask"),
        ("primary-replica-failover", "phase 'failovers' aims faults at the leader"),
        ("sharded-kv-membership", "phase 'changes' changes membership, which only a simulation can"),
    ],
)
def test_real_refuses_what_it_cannot_aim_before_any_process_starts(scenario, words, capsys, tmp_path):
    """Found by a review: with --real these exited 2 mid-run with no history (leader-aimed faults, membership), or
    isolated n0 every time whoever led (failover's primary_of reads the simulation's nodes). Refused up front."""
    out = tmp_path / "out"
    assert main(["chaos", scenario, "--real", "--time-scale", "0.05", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err
    assert not (out / "cluster").exists()  # no process was started


@pytest.mark.parametrize(
    "body, message",
    [
        (  # tomllib's bare "Cannot overwrite a value (at line 4, column 9)"
            'network = "hostile"\n[cluster]\nprotocol = "lin-kv"\n[network]\nloss = 0.1\n[workload]\nduration = 1\n',
            'line 4: expected preset = "hostile" inside the [network] table',
        ),
        (  # an OverflowError traceback from the first send (braces doubled: _scenario_file formats the text)
            '[cluster]\nprotocol = "lin-kv"\n[network]\nlatency = {{ constant = 1e300 }}\n[workload]\nduration = 1\n',
            "network.latency: expected valid constant parameters (Constant value must be less than 1e+298 seconds",
        ),
    ],
)
def test_a_toml_mistake_or_an_endless_latency_exits_two_with_the_line_and_no_traceback(tmp_path, capsys, body, message):
    """The CLI prints the file, the line or key, and what to write; exit 2."""
    path = _scenario_file(tmp_path, body)
    assert main(["chaos", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"capsim chaos: error: {path}: {message}") and "Traceback" not in err
