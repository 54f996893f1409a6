"""Tests of capsim/demos/queue.py: acks 0 loses, acks 1 duplicates, idempotence removes duplicates;
effects exactly once needs both.
"""

import json

import pytest

from capsim.cli import main
from capsim.demos import queue

PLAN = queue.Plan.quick(seed=1)
ZERO, ONE, IDEMPOTENT, EXACT = queue.CONFIGS


@pytest.fixture(scope="module")
def report():
    return queue.report(PLAN)


@pytest.fixture(scope="module")
def rows(report):
    return {run.name: run.row for run in report.tables[0].runs}


def test_acks_0_loses_messages_and_never_knows(rows):
    """acks 0: nothing is acknowledged; some messages never reach a log, some reach it twice."""
    row = rows[ZERO]
    assert row["acked"] == 0 and row["missing"] > 0 and row["log_duplicates"] > 0


def test_acks_1_loses_nothing_acknowledged_and_idempotence_removes_the_duplicates(rows):
    """acks 1: every message acknowledged and in a log; duplicates in the log unless the producer is idempotent."""
    for name in (ONE, IDEMPOTENT, EXACT):
        assert rows[name]["acked"] == PLAN.count and rows[name]["acked_missing"] == 0 and rows[name]["missing"] == 0
    assert rows[ONE]["log_duplicates"] > 0
    assert rows[IDEMPOTENT]["log_duplicates"] == 0 == rows[EXACT]["log_duplicates"]


def test_delivery_is_at_least_once_and_effects_are_exactly_once_only_with_an_idempotent_sink(rows):
    """Every logged message is applied; the crash repeats some effects unless the sink skips known ids."""
    assert all(row["unapplied"] == 0 for row in rows.values())
    assert rows[IDEMPOTENT]["effect_duplicates"] > 0
    assert rows[EXACT]["effect_duplicates"] == 0 and rows[EXACT]["applied"] == PLAN.count


def test_order_holds_within_a_partition_and_not_across(rows):
    """No effect out of offset order within a partition; some out of publishing order across partitions."""
    assert all(row["inversions_within"] == 0 for row in rows.values())
    assert all(row["inversions_across"] > 0 for row in rows.values())


def test_capsim_demo_queue_json(capsys, monkeypatch, report):
    """--json prints every configuration's figures."""
    monkeypatch.setattr(queue, "report", lambda plan: report)  # the CLI path, not a second run
    assert main(["demo", "queue", "--quick", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["figures"]) == set(queue.CONFIGS)
