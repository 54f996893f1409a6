"""Histories: JSON Lines out and in, pairing invocations with completions."""

import pytest
from tests.common.nodes import Register, cluster

from emulator import History


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
    history = History([
        {"process": 0, "type": "invoke", "f": "write", "value": 1},
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": "nemesis", "type": "info", "f": "crash", "value": "n0"},
        {"process": 0, "type": "ok", "f": "write", "value": 1},
    ])
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
