"""Histories: JSON Lines out and in, pairing invocations with completions."""

import pytest

import emulator as em
from emulator import History
from tests.common.nodes import Register, cluster


def test_a_history_round_trips_through_json_lines(tmp_path):
    """write then read gives back the same operations, nemesis ops included."""
    sim, (client,) = cluster(n=1, factory=Register)

    async def main():
        await client.invoke("write", key="k", value=[1, "two"], dest="n0")
        sim.network.partition(["n0"], ["c0"])

    sim.run(main())
    path = sim.history.write(tmp_path / "history.jsonl")
    back = History.read(path)
    assert list(back) == list(sim.history) and len(back) == 3


def test_completions_pair_each_invoke_with_its_end():
    """completions() matches ops by process and leaves an unfinished op open."""
    history = History(
        [
            {"process": 0, "type": "invoke", "f": "write", "value": 1},
            {"process": 1, "type": "invoke", "f": "read", "value": None},
            {"process": "nemesis", "type": "info", "f": "crash", "value": "n0"},
            {"process": 0, "type": "ok", "f": "write", "value": 1},
        ]
    )
    pairs = history.completions()
    assert [(a["process"], b and b["type"]) for a, b in pairs] == [(0, "ok"), (1, None)]


def test_a_bad_line_is_reported_with_its_number(tmp_path):
    """Reading junk names the file, the line and what was expected."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"process": 0, "type": "invoke", "f": "read"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not JSON"):
        History.read(path)
    path.write_text('{"process": 0, "type": "begin"}\n')
    with pytest.raises(ValueError, match=r":1: expected an operation with a type in"):
        History.read(path)


def test_on_complete_sees_every_completion_once_and_may_crash_the_node_that_acked():
    """on_complete gets each ok/fail/info as recorded (not invokes or faults).

    A crash it makes lands at that instant.
    """
    sim = em.Simulation(seed=1, latency=em.Constant(0.001))
    sim.add_node("n1", Register)
    client = sim.add_client("c1")
    seen = []

    def crash_after_first_write(op):
        seen.append((op["type"], op["f"], sim.now))
        if op["f"] == "write" and op["type"] == "ok" and sim.alive("n1"):
            sim.crash("n1")

    remove = sim.history.on_complete(crash_after_first_write)

    async def work():
        await client.invoke("write", key="x", value=1, dest="n1")
        try:
            await client.invoke("read", key="x", dest="n1", timeout=0.1)
        except em.Timeout:
            pass
        remove()
        remove()
        sim.restart("n1")
        await client.invoke("write", key="x", value=2, dest="n1")

    sim.run(work())
    assert seen == [("ok", "write", 0.002), ("info", "read", 0.102)]
    crash = next(op for op in sim.history if op["f"] == "crash")
    assert crash["time"] == 0.002 and crash["index"] == 2  # right after the ok it reacted to
