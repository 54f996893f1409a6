"""Tests of emulator/transport/storage.py: a real node's clock and durable storage."""

import time
from pathlib import Path

import pytest

import emulator as em
from emulator.transport import FileStorage, WallClock


def test_storage_survives_a_new_instance(tmp_path):
    """What was written is there when the file is opened again; int keys and tuples keep their types."""
    path = tmp_path / "n1.storage"
    first = FileStorage(path)
    store = em.Storage(first, type("E", (), {"alive": True})())
    store["data"] = {1: ("a", 2), "k": [None, True, 1.5]}
    store.setdefault("boots", 3)
    del store["boots"]
    assert dict(FileStorage(path)) == {"data": {1: ("a", 2), "k": [None, True, 1.5]}}


def test_a_corrupt_file_is_set_aside(tmp_path):
    """An unreadable file is moved to .corrupt and the storage starts empty."""
    path = tmp_path / "n1.storage"
    path.write_text("{'a': __import__('os')}")
    assert dict(FileStorage(path)) == {}
    assert (tmp_path / "n1.storage.corrupt").exists()


def test_the_wall_clock_can_be_skewed():
    """offset moves now(); drift changes its rate; a backwards clock is refused."""
    clock = WallClock()
    assert abs(clock.now() - time.time()) < 1
    clock.set(offset=-3600)
    assert abs(clock.now() - (time.time() - 3600)) < 1
    with pytest.raises(em.ConfigError, match="drift"):
        clock.set(drift=-1)
    with pytest.raises(em.ConfigError, match="finite"):
        clock.set(offset=float("nan"))


def test_sync_saves_a_change_made_in_place_and_only_a_change(tmp_path):
    """An append to a stored list is no assignment: sync() writes it (True), and writes nothing when nothing changed."""
    path = tmp_path / "n1.storage"
    store = FileStorage(path)
    store["log"] = []
    assert store.sync() is False  # the assignment saved it already
    store["log"].append("entry")
    assert dict(FileStorage(path)) == {"log": []}  # not yet on disk
    assert store.sync() is True
    assert dict(FileStorage(path)) == {"log": ["entry"]}
    assert store.sync() is False
    assert FileStorage(path).sync() is False  # a storage read from its file has nothing to save


class _Appender(em.Node):
    """Appends in place to a stored list, then tells n1: the append must be on disk before that message leaves."""

    def __init__(self):
        self.told = 0

    async def handle_append(self, msg):
        self.storage.setdefault("log", []).append(msg.body["entry"])
        self.send("n1", {"type": "appended", "entry": msg.body["entry"]})

    async def handle_appended(self, msg):
        self.told += 1


@pytest.mark.asyncio
async def test_a_real_node_s_change_in_place_is_on_disk_before_its_next_message_leaves(tmp_path):
    """On the real transport with a data directory, what a node changed in place before it sends is in its file
    when the message arrives: a SIGKILL after the peer heard of the change cannot lose it."""
    import asyncio

    import aiohttp

    from emulator.transport import RealCluster
    from tests.common.transport_http import envelope, post

    cluster = await RealCluster.local({"n0": (_Appender, {}), "n1": (_Appender, {})}, data_dir=tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            for entry in ("a", "b"):
                body = {"type": "append", "entry": entry}
                await post(http, cluster.url("n0") + "/msg", envelope(body, src="c0", dest="n0"))
        async with asyncio.timeout(10):  # real time, on a loaded machine: generous
            while cluster.node("n1").told < 2:
                await asyncio.sleep(0.01)
        on_disk = FileStorage(tmp_path / "n0.storage")["log"]
    finally:
        await cluster.close()
    assert on_disk == ["a", "b"]


@pytest.mark.parametrize(
    "value, words",
    [
        (float("inf"), "inf"),
        ({"x": [1, float("nan")]}, "nan"),
        (object(), "object"),
        (frozenset({1}), "frozenset"),
        (em.Constant(1.0), "Constant"),
        (2**20000, "4300 digits"),
    ],
    ids=["inf", "nan", "object", "frozenset", "distribution", "huge-int"],
)
def test_a_value_the_file_cannot_hold_is_refused_and_nothing_is_lost(tmp_path, value, words):
    """inf, nan, an object, a frozenset: repr writes them, but the file then cannot be read, and the next start
    set the whole storage aside and began empty. The write is refused (ConfigError naming the value and the key),
    the dict keeps its old value, and the file still reads back."""
    path = tmp_path / "n1.storage"
    store = FileStorage(path)
    store["kept"] = {"a": 1}
    store["x"] = 1
    with pytest.raises(em.ConfigError, match=words) as refused:
        store["x"] = value
    assert "'x'" in str(refused.value) and "plain data" in str(refused.value)
    assert dict(store) == {"kept": {"a": 1}, "x": 1}
    assert dict(FileStorage(path)) == {"kept": {"a": 1}, "x": 1} and not (tmp_path / "n1.storage.corrupt").exists()


def test_nesting_the_file_cannot_hold_is_refused(tmp_path):
    """Python's parser reads at most about 200 levels of brackets: deeper values were written and then unreadable.
    MAX_NESTING levels are kept and read back; one more is refused."""
    from emulator.transport.storage import MAX_NESTING

    store = FileStorage(tmp_path / "n1.storage")
    deep: list = []
    for _ in range(MAX_NESTING - 3):  # deep nests MAX_NESTING - 2 levels; the list holding it and the dict add two
        deep = [deep]
    store["v"] = [deep]
    assert FileStorage(tmp_path / "n1.storage")["v"] == [deep]
    with pytest.raises(em.ConfigError, match=f"nested deeper than {MAX_NESTING}"):
        store["v"] = [[deep]]


def test_a_change_in_place_the_file_cannot_hold_is_not_written(tmp_path):
    """sync() of an in-place change to inf raises ConfigError and leaves the file as it was."""
    path = tmp_path / "n1.storage"
    store = FileStorage(path)
    store["log"] = [1]
    store["log"].append(float("-inf"))
    with pytest.raises(em.ConfigError, match="inf"):
        store.sync()
    assert dict(FileStorage(path)) == {"log": [1]}


def test_popitem_and_in_place_union_are_saved(tmp_path):
    """Every change is a write: popitem and |= (which dict does without calling update) save too."""
    path = tmp_path / "n1.storage"
    store = FileStorage(path)
    store |= {"a": 1, "b": 2}
    assert dict(FileStorage(path)) == {"a": 1, "b": 2}
    store.popitem()
    assert dict(FileStorage(path)) == {"a": 1}


class _Spoiler(em.Node):
    """Keeps a stored list and, asked to, appends a value the file cannot hold, in place, then answers."""

    async def handle_add(self, msg):
        self.storage.setdefault("log", []).append(float(msg.body["value"]))
        return {"type": "add_ok"}


@pytest.mark.asyncio
async def test_an_answer_whose_change_cannot_be_saved_is_not_sent(tmp_path):
    """A change in place the file cannot hold (inf) is not saved, so the answer that would acknowledge it does not
    leave: the client times out (indefinite), the node's /status names the error, and the file still holds what
    was acknowledged before. The node used to raise out of its send, or write a file no restart could read."""
    from emulator.transport import RealCluster

    cluster = await RealCluster.local({"n0": _Spoiler}, data_dir=tmp_path)
    try:
        client = await cluster.add_client("c0")
        assert (await client.rpc("n0", {"type": "add", "value": "1"}, timeout=10))["type"] == "add_ok"
        with pytest.raises(em.Timeout):
            await client.rpc("n0", {"type": "add", "value": "inf"}, timeout=1.0)
        status = await cluster.status("n0")
    finally:
        await cluster.close()
    assert status["counters"]["drops"].get("unsaved") == 1
    assert any("storage cannot hold" in e["error"] and "inf" in e["error"] for e in status["errors"])
    assert dict(FileStorage(tmp_path / "n0.storage")) == {"log": [1.0]}


_WRITER = """
import sys
from emulator.transport import FileStorage
store = FileStorage(sys.argv[1])
n = store.get("n", 0)
print(n, flush=True)
while True:
    n += 1
    store.update({"n": n, "pad": "x" * (n % 40) * 25_000})  # up to 1 MB: a write takes long enough to be cut
"""


def test_a_sigkill_at_any_moment_leaves_the_last_complete_write(tmp_path):
    """The module's claim: a node killed at any moment restarts with its last completed write. A process
    rewriting a file of up to 1 MB as fast as it can is SIGKILLed five times, at whatever point it has reached;
    each time the file reads back whole (n and the padding agree), no write is undone, and nothing is set aside."""
    import os
    import signal
    import subprocess
    import sys

    path = tmp_path / "n1.storage"
    root = str(Path(__file__).resolve().parents[3])
    last = 0
    for _ in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": root},
        )
        try:
            assert int(child.stdout.readline()) == last  # it read back what the last one left
            deadline = time.monotonic() + 30  # a loaded machine: generous, but keyed to progress
            while FileStorage(path).get("n", 0) < last + 3 and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        stored = dict(FileStorage(path))
        assert stored["pad"] == "x" * (stored["n"] % 40) * 25_000 and stored["n"] >= last + 3
        last = stored["n"]
    assert not (tmp_path / "n1.storage.corrupt").exists()


def test_a_second_unreadable_file_does_not_replace_the_first_one_set_aside(tmp_path):
    """Each unreadable file is kept for a person to look at: the second went to the same .corrupt name and
    replaced the first."""
    path = tmp_path / "n1.storage"
    for text in ("first {", "second {"):
        path.write_text(text)
        assert dict(FileStorage(path)) == {}
    kept = sorted(p.read_text() for p in tmp_path.glob("n1.storage.corrupt*"))
    assert kept == ["first {", "second {"]
