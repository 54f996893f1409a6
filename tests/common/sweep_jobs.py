"""Jobs for sweep tests, importable by worker processes (spawned workers import them by name)."""

import os
import signal
import time
from pathlib import Path


def square(item):
    """A quick job."""
    return item * item


def kill_on(fatal, item):
    """SIGKILLs its own process on the items in ``fatal`` (as the OOM killer would); squares the others."""
    if item in fatal:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def raise_on(bad, item):
    """Raises on the items in ``bad``."""
    if item in bad:
        raise ValueError(f"bad item {item}")
    return item * item


def seed_line(seed):
    """A sweep job: passes on even seeds, fails on odd ones."""
    return {"status": "pass" if seed % 2 == 0 else "fail", "square": seed * seed}


def seed_line_killing(fatal, seed):
    """A sweep job whose worker dies on the seeds in ``fatal``."""
    if seed in fatal:
        os.kill(os.getpid(), signal.SIGKILL)
    return seed_line(seed)


def slow_seed_noting_pid(directory, seed):
    """A sweep job that notes its process id in DIRECTORY and takes a while."""
    Path(directory, f"{os.getpid()}.pid").write_text(str(os.getpid()))
    time.sleep(0.5)
    return seed_line(seed)


def fail_to_load():
    """Called when a worker unpickles an Unloadable: as if the job's module would not import there."""
    raise ImportError("No module named 'gone'")


class Unloadable:
    """Pickles in the parent; raises ImportError when a worker unpickles it."""

    def __reduce__(self):
        return fail_to_load, ()


def note_item(directory, item):
    """Notes ``item`` as a file in DIRECTORY (proof that a worker took it); returns it."""
    Path(directory, str(item)).write_text(str(os.getpid()))
    return item
