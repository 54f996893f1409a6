"""Tests of emulator/transport/storage.py: a real node's clock and durable storage."""

import time

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
