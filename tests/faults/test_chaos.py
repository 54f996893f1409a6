"""The chaos runner and ``capsim chaos``: numbers, verdicts, replay, files, exit codes 0/1/2."""

import json
import textwrap
from pathlib import Path

import pytest

import emulator as em
from capsim.cli import main
from emulator.check import read_history
from faults import Phase, Schedule, load_scenario, replay, run_chaos, scenario_schedule, validate_check
from tests.common.faults_nodes import small_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios"

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


def scenario_file(tmp_path, text, name="scenario.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# -- the runner, from Python ------------------------------------------------------------------------


def test_a_correct_store_passes_and_the_result_has_the_numbers():
    """lin-kv under partitions and crashes: checks pass; counts add up to the invocations; faults match the schedule."""
    schedule = Schedule().add(0.5, "partition", 1.0, shape="halves").add(2.0, "crash", 1.0, count=1)
    scenario = small_scenario(faults=schedule, checks=("linearizable", "stale-reads", "lost-writes", "availability"))
    result = run_chaos(scenario, seed=3)
    assert result.passed and [c.verdict for c in result.checks] == ["pass"] * 4
    invokes = [op for op in result.history.client_ops() if op["type"] == "invoke"]
    assert sum(result.counts.values()) == len(invokes) > 50
    assert result.counts["info"] > 0, "the faults must cost something"
    assert result.faults == {"partition": 1, "crash": 1} and result.schedule == schedule
    by_f = result.counts_by_f()
    assert set(by_f) == {"read", "write", "cas"} and sum(sum(r.values()) for r in by_f.values()) == len(invokes)


def test_a_store_that_reads_locally_fails_linearizability_under_a_partition():
    """LocalKV under a halves partition: linearizable and stale-reads fail, with failing keys named."""
    scenario = small_scenario(
        "tests.common.faults_nodes:LocalKV",
        duration=5.0,
        checks=("linearizable", "stale-reads"),
        faults=Schedule().add(1.0, "partition", 3.0, shape="halves"),
    )
    result = run_chaos(scenario, seed=2)
    assert not result.passed
    lin, stale = result.checks
    assert lin.passed is False and "NOT linearizable" in lin.summary and "failing keys" in lin.summary
    assert stale.passed is False and stale.details["stale"] > 0


def test_the_hostile_network_scenario_catches_a_store_that_applies_every_copy_the_flaky_one_does_not():
    """A store that applies each duplicate fails lin-kv-hostile-network.toml at its seed; the old flaky scenario passes it."""
    hostile = load_scenario(EXAMPLES / "lin-kv-hostile-network.toml")
    flaky = load_scenario(EXAMPLES / "lin-kv-flaky-network.toml")
    for scenario in (hostile, flaky):
        scenario.cluster.protocol = "tests.common.faults_nodes:EveryCopyKV"
    caught = run_chaos(hostile, seed=hostile.seed)
    assert not caught.passed and any(c.name == "linearizable" and c.passed is False for c in caught.checks)
    assert caught.sim.network.stats["duplicated"] > 100
    assert run_chaos(flaky, seed=flaky.seed).passed


def test_the_strict_quorum_hostile_scenario_catches_a_quorum_store_that_coordinates_every_copy():
    """A quorum store that makes a version per copy of a write serves stale reads in quorum-strict-hostile.toml."""
    scenario = load_scenario(EXAMPLES / "quorum-strict-hostile.toml")
    assert run_chaos(scenario, seed=scenario.seed).passed
    scenario.cluster.protocol = "tests.common.faults_nodes:EveryCopyQuorumKV"
    caught = run_chaos(scenario, seed=scenario.seed)
    assert [c.name for c in caught.failed] == ["stale-reads"], [c.summary for c in caught.checks]


def test_replaying_the_schedule_with_the_seed_gives_the_same_run():
    """replay(scenario, seed, result.schedule) reproduces the trace digest; another seed does not."""
    scenario = load_scenario(EXAMPLES / "lin-kv-crashes.toml")
    scenario.phases = [Phase(p.name, p.duration / 4, p.faults, p.heal, p.checks) for p in scenario.phases]
    scenario.workload.duration = scenario.duration
    first = run_chaos(scenario, seed=5)
    again = replay(scenario, 5, Schedule.from_dict(json.loads(json.dumps(first.schedule.to_dict()))))
    assert again.sim.trace_digest() == first.sim.trace_digest()
    assert run_chaos(scenario, seed=6).sim.trace_digest() != first.sim.trace_digest()


def test_random_phases_draw_their_schedule_from_the_seed():
    """The merged schedule depends on the seed, and each phase's steps start within that phase."""
    scenario = load_scenario(EXAMPLES / "lin-kv-partitions.toml")
    one, other = scenario_schedule(scenario, 1), scenario_schedule(scenario, 2)
    assert one == scenario_schedule(scenario, 1) and one != other
    assert all(step.at < 20.0 for step in one if step.kind == "partition")
    assert [s for s in one if s.kind == "heal"] == [s for s in one][-1:] and one.steps[-1].at == 20.0


def test_a_heal_phase_stops_every_fault_and_judges_only_its_own_operations():
    """The settle phase heals at its start; its availability counts exactly the ops invoked in it."""
    scenario = small_scenario(duration=6.0, faults=Schedule().add(0.5, "partition").add(1.0, "crash", count=1))
    scenario.phases = [
        Phase("main", 3.0, scenario.phases[0].faults),
        Phase("settle", 3.0, heal=True, checks={"availability": validate_check("availability", {"min": 0.99})}),
    ]
    result = run_chaos(scenario, seed=4)
    stops = [op for op in result.history.nemesis_ops() if op["f"].startswith("stop-")]
    assert len(stops) == 2 and all(op["time"] == 3.0 for op in stops)
    settle = result.checks[-1]
    in_window = [op for op in result.history.client_ops() if op["type"] == "invoke" and 3.0 <= op["time"] < 6.0]
    assert settle.phase == "settle" and settle.details["overall"]["total"] == len(in_window) > 50
    assert settle.passed


def test_availability_reports_each_side_of_each_partition():
    """availability lists, per partition with sides, the ops sent to each side while it lasted."""
    scenario = small_scenario(
        nodes=5,
        duration=5.0,
        checks=("availability",),
        faults=Schedule().add(1.0, "partition", 3.0, groups=[["n0", "n1"], ["n2", "n3", "n4"]]),
    )
    result = run_chaos(scenario, seed=1)
    (part,) = result.checks[0].details["partitions"]
    sides = part["sides"]
    # lin-kv's leader n0 is in group0: that side keeps answering, the other times out.
    assert sides["group0"]["fraction"] == 1.0 and sides["group1"]["fraction"] < 0.2


def test_protocol_exceptions_fail_the_node_errors_check():
    """A protocol whose cas handler raises fails node-errors, which quotes the first exception; without cas it passes."""
    scenario = small_scenario("tests.common.faults_nodes:BuggyKV", duration=2.0, checks=("node-errors",))
    result = run_chaos(scenario, seed=1)
    (errors,) = result.checks
    crashed = [op for op in result.history.client_ops() if (op.get("error") or [None])[0] == 13]
    assert errors.passed is False and "KeyError" in errors.summary
    assert len(errors.details["errors"]) == len(crashed) > 0
    scenario.workload.mix = {"read": 0.5, "write": 0.5}
    assert run_chaos(scenario, seed=1).checks[0].passed is True


def test_isolate_primary_without_a_primary_is_a_config_error():
    """A step that needs a primary, on a protocol without a leader and a cluster naming none, raises ConfigError."""
    scenario = small_scenario(
        "tests.common.faults_nodes:LocalKV", faults=Schedule().add(1.0, "partition", 1.0, shape="isolate-primary")
    )
    with pytest.raises(em.ConfigError, match="isolate-primary"):
        run_chaos(scenario, seed=1)


def test_isolate_primary_finds_the_protocols_leader_when_the_cluster_names_none():
    """lin-kv knows its leader (SingleKV.leader_of): isolate-primary cuts off n0 with no primary configured."""
    scenario = small_scenario(faults=Schedule().add(1.0, "partition", 1.0, shape="isolate-primary"))
    result = run_chaos(scenario, seed=1)
    (start,) = [op for op in result.history.nemesis_ops() if op["f"] == "start-partition"]
    assert start["value"]["sides"] == {"primary": ["n0"], "rest": ["n1", "n2"]} and result.passed


def test_write_puts_history_trace_and_summary_in_a_directory(tmp_path):
    """write(): history.jsonl that the checkers read back, trace.jsonl, and summary.json with the verdicts."""
    result = run_chaos(small_scenario(faults=Schedule().add(1.0, "loss", 1.0)), seed=1, keep_trace=True)
    paths = result.write(tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == ["history.jsonl", "summary.json", "trace.jsonl"]
    assert len(read_history(paths["history"])) == len(result.history)
    summary = json.loads(paths["summary"].read_text())
    assert summary["passed"] is True and summary["faults"] == {"loss": 1}
    assert summary["digest"] == result.sim.trace_digest() and summary["schedule"] == result.schedule.to_dict()
    kinds = {json.loads(line)["kind"] for line in paths["trace"].read_text().splitlines()}
    assert {"deliver", "drop", "op"} <= kinds


# -- the command line ---------------------------------------------------------------------------------


def test_the_cli_runs_an_example_and_exits_zero(tmp_path, capsys):
    """capsim chaos <example> --out DIR: exit 0, a summary with ops, faults and checks, and the three files."""
    out = tmp_path / "out"
    assert main(["chaos", str(EXAMPLES / "lin-kv-flaky-network.toml"), "--seed", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for word in ("Operations", "Faults applied", "Checks", "latency", "linearizable", "PASSED", "--seed 4"):
        assert word in text
    assert {p.name for p in out.iterdir()} == {"history.jsonl", "trace.jsonl", "summary.json"}


def test_the_cli_exits_one_when_a_check_fails_and_explains_why(tmp_path, capsys):
    """A failing check: exit 1, FAILED, the checker's explanation and the command that replays the run."""
    path = scenario_file(tmp_path, BROKEN)
    assert main(["chaos", path]) == 1
    text = capsys.readouterr().out
    assert "FAILED" in text and "NOT linearizable" in text and "longest linearizable prefix" in text
    assert f"capsim chaos {path} --seed 2" in text


def test_a_bad_scenario_exits_two_with_the_file_and_key_and_no_traceback(tmp_path, capsys):
    """A scenario error prints 'capsim chaos: error: <file>: <key>: expected ..., found ...' and exits 2."""
    path = scenario_file(tmp_path, BROKEN.replace("rate = 60", "rate = -5"))
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
    path = scenario_file(tmp_path, BROKEN.replace('shape = "halves"', 'shape = "isolate-primary"'))
    assert main(["chaos", path]) == 2
    err = capsys.readouterr().err
    assert "nope.toml: file: expected a readable scenario file" in err and "isolate-primary" in err
    assert "Traceback" not in err


def test_a_seed_range_runs_in_worker_processes_and_lists_failing_seeds(tmp_path, capsys):
    """--seeds 2-3 --jobs 2 on the broken store: exit 1, a line per failing seed with its replay command,
    and each seed's digest in DIR/seed-N equals an in-process run's."""
    path = scenario_file(tmp_path, BROKEN.replace("duration = 6.0", "duration = 4.0"))
    out = tmp_path / "out"
    assert main(["chaos", path, "--seeds", "2-3", "--jobs", "2", "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "2/2" in text and "0 of 2 seeds passed" in text
    for seed in (2, 3):
        assert f"capsim chaos {path} --seed {seed}" in text
        summary = json.loads((out / f"seed-{seed}" / "summary.json").read_text())
        assert summary["digest"] == run_chaos(load_scenario(path), seed=seed).sim.trace_digest()


def test_a_passing_seed_range_exits_zero(capsys):
    """--seeds on a correct store, in this process (--jobs 1): exit 0 and every seed passed."""
    assert main(["chaos", str(EXAMPLES / "lin-kv-crashes.toml"), "--seeds", "1-2", "--jobs", "1"]) == 0
    assert "2 of 2 seeds passed" in capsys.readouterr().out
