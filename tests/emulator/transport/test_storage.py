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
