"""A report's model: a Run pairs its operations, places clients on sides, and knows how long it lasted."""

import dataclasses
import json

from hypothesis import given
from hypothesis import strategies as st

from capsim.report import Run, Section, Window


def _op(process, kind, time, client="c0", f="read"):
    return {"process": process, "type": kind, "f": f, "time": time, "client": client}


# Per process: how many operations it runs, and whether its last one is left open.
processes = st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=1, max_size=5)


@given(processes, st.randoms(use_true_random=False))
def test_completed_pairs_each_completion_with_its_own_invoke_under_any_interleaving(plan, rnd):
    """However processes interleave, every completion pairs with its process's invoke; open ops are left out."""
    queues = []
    for process, (count, left_open) in enumerate(plan):
        ops = []
        for i in range(count):
            ops.append(_op(process, "invoke", 0.0, f=f"op{process}.{i}"))
            if not (left_open and i == count - 1):
                ops.append(_op(process, ["ok", "fail", "info"][i % 3], 0.0, f=f"op{process}.{i}"))
        queues.append(ops)
    history = []
    while any(queues):
        queue = rnd.choice([q for q in queues if q])
        history.append(queue.pop(0))
        if rnd.random() < 0.3:
            history.append({"process": "nemesis", "type": "info", "f": "partition", "time": 0.0})
    pairs = Run("r", history, {}).completed()
    assert all(invoke["f"] == done["f"] and invoke["type"] == "invoke" for invoke, done in pairs)
    assert sorted(done["f"] for _, done in pairs) == sorted(
        op["f"] for op in history if op["type"] in ("ok", "fail", "info") and op["process"] != "nemesis"
    )
    completions = [op for op in history if op["process"] != "nemesis" and op["type"] != "invoke"]
    assert [done for _, done in pairs] == completions  # in completion order


def test_nemesis_ops_are_never_paired():
    """A nemesis 'invoke'/'info' pair is a fault, not a client operation."""
    history = [
        {"process": "nemesis", "type": "invoke", "f": "start", "time": 1.0},
        {"process": "nemesis", "type": "info", "f": "start", "time": 1.0},
    ]
    assert Run("r", history, {}).completed() == []


def test_a_completion_without_an_invoke_is_ignored():
    """A history cut at the front (completion first) yields no pair for that completion."""
    assert Run("r", [_op(0, "ok", 1.0), _op(0, "invoke", 2.0), _op(0, "ok", 3.0)], {}).completed() == [
        (_op(0, "invoke", 2.0), _op(0, "ok", 3.0))
    ]


def test_side_of_names_the_side_of_the_client_or_all():
    """An op's client on a side gives that side; an unknown client, or no sides, gives 'all'."""
    run = Run("r", [], {}, sides={"minority": ["bob"], "majority": ["alice", "carol"]})
    assert run.side_of(_op(0, "invoke", 0.0, client="carol")) == "majority"
    assert run.side_of(_op(0, "invoke", 0.0, client="bob")) == "minority"
    assert run.side_of(_op(0, "invoke", 0.0, client="dave")) == "all"
    assert Run("r", [], {}).side_of(_op(0, "invoke", 0.0, client="bob")) == "all"


def test_duration_is_the_last_op_time_and_zero_when_empty():
    """duration() is the latest op time, nemesis ops included; an empty run lasts 0."""
    history = [
        _op(0, "invoke", 1.0),
        {"process": "nemesis", "type": "info", "f": "heal", "time": 9.5},
        _op(0, "ok", 2.0),
    ]
    assert Run("r", history, {}).duration() == 9.5
    assert Run("r", [], {}).duration() == 0.0


def test_runs_do_not_share_their_default_containers():
    """Two runs built without sides/windows/stale/extra get their own (no shared mutable default)."""
    a, b = Run("a", [], {}), Run("b", [], {})
    a.sides["x"] = ["c0"]
    a.windows.append(Window(0.0, 1.0, "cut"))
    a.stale.append(0.5)
    a.extra["k"] = 1
    assert (b.sides, b.windows, b.stale, b.extra) == ({}, [], [], {})


def test_a_section_and_its_runs_round_trip_through_json():
    """A Section is plain data: asdict -> JSON -> the same Section rebuilt from it."""
    run = Run(
        "cp",
        [_op(0, "invoke", 0.0), _op(0, "ok", 0.1)],
        {"availability": 0.5},
        sides={"minority": ["c0"]},
        windows=[Window(3.0, 8.0, "partition")],
        stale=[4.5],
    )
    section = Section("cap", "CAP", ["availability"], [run], note="n", transpose=True)
    data = json.loads(json.dumps(dataclasses.asdict(section)))
    runs = [Run(**{**r, "windows": [Window(**w) for w in r["windows"]]}) for r in data.pop("runs")]
    assert Section(**data, runs=runs) == section
