"""Tests of faults/chaos.py: the chaos runner's numbers, verdicts, replay and files.

``capsim chaos`` is tested in tests/capsim/commands/test_chaos.py.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from emulator import check
from emulator.check import read_history
from faults import (
    CheckResult,
    Phase,
    Schedule,
    fault_spans,
    load_scenario,
    replay,
    run_chaos,
    scenario_schedule,
    validate_check,
)
from tests.common.faults_nodes import small_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios"

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
    """A store that applies each duplicate fails lin-kv-hostile-network.toml at its seed;
    the old flaky scenario passes it."""
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


def test_availability_reports_each_cut_of_a_flapping_partition_with_its_own_sides():
    """A flapping partition is one fault in the history, but availability reports its cuts one by one: each with
    the sides of its own draw, counting the ops sent to each side from that cut to its heal."""
    scenario = small_scenario(
        nodes=5,
        duration=6.0,
        checks=("availability",),
        faults=Schedule()
        .add(0.5, "partition", 1.0, groups=[["n0", "n1"], ["n2", "n3", "n4"]])
        .add(2.0, "partition", 3.5, shape="isolate-one", flap=[0.3, 0.6]),
    )
    result = run_chaos(scenario, seed=1)
    steady, flapping = fault_spans(result.history, "partition")
    assert "flap" not in steady.value and flapping.value["flap"] == [0.3, 0.6] and len(steady.cuts) == 1
    assert len({repr(piece.sides) for piece in flapping.cuts}) > 1  # each cut a new draw of its shape
    reports = result.checks[0].details["partitions"]
    assert [(r["id"], r["cut"]) for r in reports] == [(steady.id, 1)] + [
        (flapping.id, n) for n in range(1, len(flapping.cuts) + 1)
    ]
    invokes = [op for op in result.history.client_ops() if op["type"] == "invoke"]
    counted = 0
    for report, piece in zip(reports[1:], flapping.cuts, strict=True):
        assert (report["start"], report["stop"]) == (piece.start, piece.stop) and set(report["sides"]) == set(
            piece.sides
        )
        for side, members in piece.sides.items():
            sent = [op for op in invokes if piece.contains(op["time"]) and op["node"] in members]
            assert report["sides"][side]["total"] == len(sent)
            counted += len(sent)
        # lin-kv's leader is n0: while a follower is cut off, the rest answers and the follower does not; while n0
        # is, neither side has a leader that reaches a majority
        rest, isolated = (report["sides"][side]["fraction"] for side in ("rest", "isolated"))
        assert isolated in (None, 0.0) and (rest is None or (rest >= 0.75) == (piece.sides["isolated"] != ["n0"]))
    assert counted > 20


def test_a_flapping_partition_s_own_records_change_no_other_measure_of_the_run():
    """heal-partition and cut-partition only name the cuts: each heal's convergence epoch still runs to the next cut,
    and fault windows and whole-run availability are what the history without them gives."""
    from faults import HEALS

    scenario = small_scenario(
        nodes=5,
        duration=5.0,
        checks=("availability",),
        faults=Schedule().add(1.0, "partition", 3.0, shape="halves", flap=[0.1, 0.3]),
    )
    history = list(run_chaos(scenario, seed=2).history)
    bare = [op for op in history if op.get("f") not in ("heal-partition", "cut-partition")]
    assert len(bare) < len(history) - 4  # the flap cut and healed a few times

    def epochs(ops):
        return [
            (c.heal.time, c.epoch_end, c.reads, c.converged_at, c.time) for c in check.convergence(ops, heals=HEALS)
        ]

    assert epochs(history) == epochs(bare) and sum(1 for e in epochs(history) if e[2]) >= 3
    assert check.fault_windows(history, heals=HEALS) == check.fault_windows(bare, heals=HEALS)
    assert check.availability(history)["overall"] == check.availability(bare)["overall"]


def test_protocol_exceptions_fail_the_node_errors_check():
    """A protocol whose cas handler raises fails node-errors, which quotes the first exception;
    without cas it passes."""
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
    assert summary["verdict"] == "PASSED" and summary["replay"] == result.command() and summary["seed"] == 1
    assert summary["counts"] == result.counts and summary["by_f"] == result.counts_by_f()
    assert [entry["kind"] for entry in summary["fault_log"]] == ["loss"]
    assert [set(c) for c in summary["checks"]] == [{"name", "phase", "passed", "verdict", "summary", "details"}] * len(
        result.checks
    )
    kinds = {json.loads(line)["kind"] for line in paths["trace"].read_text().splitlines()}
    assert {"deliver", "drop", "op"} <= kinds


def test_summary_verdict_merges_the_checks_as_jepsen_merges_valid_and_matches_the_printed_word(tmp_path):
    """summary.json's verdict is FAILED when a check failed, else UNKNOWN when one could not tell, else PASSED
    (no checks: PASSED), the word ``capsim chaos`` prints; ``passed`` is true exactly when it is PASSED."""
    from capsim.commands.chaos import verdict as printed

    result = run_chaos(small_scenario(duration=1.0), seed=1)
    words = {"pass": "PASSED", "fail": "FAILED", "unknown": "UNKNOWN"}

    @settings(max_examples=100, deadline=None)
    @given(outcomes=st.lists(st.sampled_from([True, False, None]), max_size=6))
    def merged(outcomes):
        result.checks = [CheckResult(f"check{i}", outcome, "drawn") for i, outcome in enumerate(outcomes)]
        expected = "FAILED" if False in outcomes else "UNKNOWN" if None in outcomes else "PASSED"
        summary = json.loads(result.write(tmp_path / "out")["summary"].read_text())
        assert summary["verdict"] == result.verdict == expected == words[printed(result.checks)]
        assert summary["passed"] is result.passed is (expected == "PASSED")
        assert [c["passed"] for c in summary["checks"]] == outcomes

    merged()


# -- the same run in any process ---------------------------------------------------------------------

_RUN_SHIPPED = """
import hashlib, json, sys
from faults import load_scenario, run_chaos
from emulator.speedups import ACCELERATED
for path in sys.argv[1:]:
    result = run_chaos(load_scenario(path))
    s = result.summary()
    same = {k: s[k] for k in ("seed", "counts", "by_f", "faults", "fault_log", "schedule", "virtual_time",
                              "node_errors", "network", "digest")}  # not the checks' wall-clock time
    same["verdicts"] = [(c.name, c.verdict) for c in result.checks]
    same["history"] = hashlib.sha256(result.history.dumps().encode()).hexdigest()
    print(json.dumps([path, ACCELERATED, same], sort_keys=True))
"""


def _shipped_runs(paths, hash_seed, pure):
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, CAPSIM_PURE_PYTHON="1" if pure else "")
    out = subprocess.run(
        [sys.executable, "-c", _RUN_SHIPPED, *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    if pure:
        assert not any(accelerated for _, accelerated, _ in lines), "CAPSIM_PURE_PYTHON=1 must run pure Python"
    return {path: same for path, _, same in lines}


def _same_in_any_process(paths):
    runs = [_shipped_runs(paths, "0", pure=False), _shipped_runs(paths, "1", pure=True)]
    runs.append(_shipped_runs(paths, str(int(hashlib.sha256(b"capsim").hexdigest()[:8], 16)), pure=False))
    for path in paths:
        assert runs[0][str(path)] == runs[1][str(path)] == runs[2][str(path)], path


def test_a_shipped_scenario_under_every_fault_replays_bit_for_bit_in_any_process():
    """lin-kv-every-fault and http-kv-chaos (hosts, aiohttp): the same digest, history, faults and verdicts
    under three PYTHONHASHSEEDs, with the compiled core and with pure Python."""
    _same_in_any_process([EXAMPLES / "lin-kv-every-fault.toml", EXAMPLES / "http-kv-chaos.toml"])


@pytest.mark.slow
def test_every_shipped_scenario_replays_bit_for_bit_in_any_process():
    """Every shipped scenario: the same digest, history, faults and verdicts in any process, in both modes."""
    _same_in_any_process(sorted(EXAMPLES.glob("*.toml")))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_judge_shares_one_pairing_of_the_history_and_every_verdict_is_as_without(seed, monkeypatch):
    """judge_history shares one pairing among the checks that see the same ops (pairs_shared); no outcome changes."""
    import contextlib
    import re

    import emulator.check.ops as ops
    import faults.chaos as chaos

    scenario = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "lin-kv-partitions.toml")
    history = run_chaos(scenario, seed).history
    paired = []
    monkeypatch.setattr(ops, "_pair", lambda *args, real=ops._pair: paired.append(1) or real(*args))

    def outcomes():
        # A check's summary may carry its own wall time ("0.003 s"): the rest must match.
        return [
            (c.name, c.phase, c.passed, re.sub(r"\d+\.\d+ s\b", "T s", c.summary))
            for c in chaos.judge_history(scenario, history)
        ]

    shared, pairings = outcomes(), len(paired)
    monkeypatch.setattr(chaos, "pairs_shared", contextlib.nullcontext)
    paired.clear()
    assert outcomes() == shared
    assert pairings < len(paired)  # the checks that see the same ops (whole-run ones) share one pairing


def test_a_run_in_which_no_operation_succeeded_is_unknown_not_passed(tmp_path):
    """Every check passes an empty history (0 ops are linearizable), so a run with no ok op would have PASSED: a
    1e12 s latency (every op times out) and one served by nobody are UNKNOWN, saying why; one op ok is enough."""
    body = (
        '[cluster]\nprotocol = "lin-kv"\nnodes = 3\n[network]\nlatency = {latency}\n'
        "[workload]\nclients = 2\nrate = 20\nkeys = 2\nduration = 2.0\n"
    )
    path = tmp_path / "s.toml"
    path.write_text(body.format(latency="1e12"))
    result = run_chaos(load_scenario(path), 1)
    assert result.verdict == "UNKNOWN" and not result.passed
    (nothing,) = [c for c in result.checks if c.name == "operations"]
    assert nothing.passed is None and "no client operation succeeded" in nothing.summary
    assert all(c.passed for c in result.checks if c.name != "operations")  # each check alone passed it
    path.write_text(body.format(latency="0.001"))
    result = run_chaos(load_scenario(path), 1)
    assert result.passed and not [c for c in result.checks if c.name == "operations"]
