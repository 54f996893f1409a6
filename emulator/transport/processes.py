"""Node processes on this machine: start, wait until healthy, stop, remember.

``launch`` starts one process per node (each in its own session, so a
signal to its process group reaches it and nothing else), waits until every
one answers ``GET /health`` with its own name and pid (so a stranger already
on the port cannot pass for it), and if anything fails (a process exits, a
deadline passes, the caller is interrupted) stops every process it started
before raising: no orphans. ``ClusterState`` is the JSON file that lets a
later command find them again (``capsim cluster down``); it holds the
control token, so it is written readable by its owner only.

Which command runs a node is the caller's business (``argv`` per node): the
kernel does not know the command line.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.errors import ConfigError
from emulator.transport.errors import LaunchError
from emulator.transport.links import LinkFaults

__all__ = [
    "BIND_FAILED",
    "ClusterState",
    "NodeProcess",
    "free_ports",
    "launch",
    "node_running",
    "poll",
    "reap",
    "running",
    "signal_node",
    "spawn",
    "stop",
    "stopped",
    "wait_healthy",
]

#: Exit status of a node process that could not bind its address (the launcher retries elsewhere).
BIND_FAILED = 3


@dataclass
class NodeProcess:
    """One node process: how to start it, where it listens, and its pid once started."""

    name: str
    url: str
    argv: list[str]
    log: str
    pid: int | None = None
    exit_code: int | None = field(default=None, repr=False, compare=False)  # once reaped

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "argv": list(self.argv), "log": self.log, "pid": self.pid}


@dataclass
class ClusterState:
    """What ``capsim cluster up`` leaves behind for the commands that follow."""

    protocol: str
    token: str
    nodes: list[NodeProcess]
    faults: dict[str, Any] = field(default_factory=dict)
    skews: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def node(self, name: str) -> NodeProcess:
        for proc in self.nodes:
            if proc.name == name:
                return proc
        raise KeyError(f"no node {name!r} in this cluster; its nodes: {', '.join(p.name for p in self.nodes)}")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the state as JSON, readable by its owner only (it holds the token)."""
        path = Path(path)
        data = {
            "version": 1,
            "protocol": self.protocol,
            "token": self.token,
            "created": self.created,
            "nodes": [p.to_json() for p in self.nodes],
            "faults": self.faults,
            "skews": self.skews,
        }
        # a new file of our own (mkstemp: O_EXCL, mode 0600), never one that was there already
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClusterState:
        """Read a state file.

        Raises:
            FileNotFoundError: no cluster is up there.
            ValueError: the file is not a cluster state.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, found {type(data).__name__}")
            nodes = [_node(node) for node in _field(data, "nodes", list)]
            if not nodes:
                raise ValueError("it lists no node")
            state = cls(
                _field(data, "protocol", str),
                _field(data, "token", str),
                nodes,
                data.get("faults") or {},
                data.get("skews") or {},
                data.get("created", 0.0),
            )
            _check_faults(state)
            return state
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a capsim cluster state file ({exc})") from None


def _field(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and not value):
        raise ValueError(f"{key!r} must be a {'non-empty string' if kind is str else kind.__name__}, got {value!r:.60}")
    return value


def _node(data: object) -> NodeProcess:
    """A NodeProcess from its entry in a state file, every field of the right type."""
    if not isinstance(data, dict):
        raise ValueError(f"a node is a JSON object, got {data!r:.60}")
    argv = _field(data, "argv", list)
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise ValueError(f"a node's 'argv' is its command as a list of strings, got {argv!r:.60}")
    pid = data.get("pid")
    if pid is not None and (type(pid) is not int or pid < 1):
        raise ValueError(f"a node's 'pid' is a process id or null, got {pid!r:.60}")
    return NodeProcess(_field(data, "name", str), _field(data, "url", str), argv, _field(data, "log", str), pid)


def _check_faults(state: ClusterState) -> None:
    """Raise ValueError unless the state's faults and skews are what ``RealCluster`` wrote."""
    if not isinstance(state.faults, dict):
        raise ValueError(f"'faults' must be a JSON object, got {state.faults!r:.60}")
    try:
        LinkFaults.from_json(state.faults)
    except ConfigError as exc:
        raise ValueError(f"'faults': {exc}") from None
    if not isinstance(state.skews, dict) or not all(
        isinstance(v, list) and len(v) == 2 and all(type(x) in (int, float) for x in v) for v in state.skews.values()
    ):
        raise ValueError(f"'skews' maps a node to [offset, drift], got {state.skews!r:.60}")


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free on ``host`` right now (another program may still take one)."""
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


#: Signals held back while a process starts, so that its pid is recorded before one can interrupt.
_HELD = {signal.SIGINT, signal.SIGTERM}


def spawn(proc: NodeProcess, env: dict[str, str] | None = None) -> NodeProcess:
    """Start ``proc`` in a new session, its output appended to its log; sets ``pid``.

    The process is not tied to this one: it keeps running when this process
    exits (``capsim cluster up`` returns while its nodes run on). Ctrl-C and
    SIGTERM wait until ``pid`` is set (a KeyboardInterrupt between the start
    and the assignment would lose the process); the child starts with this
    thread's usual signal mask and with their default actions.
    """
    Path(proc.log).parent.mkdir(parents=True, exist_ok=True)
    log = os.open(proc.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2),
        ]
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        try:
            proc.exit_code = None
            proc.pid = os.posix_spawnp(
                proc.argv[0],
                proc.argv,
                os.environ if env is None else env,
                file_actions=actions,
                setsid=True,
                setsigmask=mask,
                setsigdef=_HELD,
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    finally:
        os.close(log)
    return proc


def launch(
    procs: list[NodeProcess],
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
    abort: Callable[[], None] | None = None,
) -> list[NodeProcess]:
    """Start every process and wait until all are healthy; on any failure stop them all.

    Args:
        procs: the processes to start, in order.
        env: their environment (None: this process's).
        timeout: seconds to wait until every one is healthy.
        abort: called before each start and between health checks; whatever
            it raises (a KeyboardInterrupt for a signal noted meanwhile) ends
            the launch like any failure: every process started is stopped.

    Raises:
        LaunchError: a process exited (``returncode`` says how) or stayed unhealthy.
    """
    started: list[NodeProcess] = []
    try:
        for proc in procs:
            if abort is not None:
                abort()
            started.append(proc)  # before it starts: an interrupt during spawn still finds it
            spawn(proc, env)
        wait_healthy(started, timeout, abort)
        return started
    except BaseException:
        stop(started)
        raise


def wait_healthy(procs: list[NodeProcess], timeout: float = 15.0, abort: Callable[[], None] | None = None) -> None:
    """Wait until each process answers ``/health`` with its name and pid (``abort``: as for ``launch``).

    Raises:
        LaunchError: one exited, or the deadline passed.
    """
    deadline = time.monotonic() + timeout  # wall-clock ok
    waiting = list(procs)
    while waiting:
        for proc in list(waiting):
            if abort is not None:
                abort()
            _check_exited(proc)
            if _healthy(proc):
                waiting.remove(proc)
        if waiting:
            if time.monotonic() > deadline:  # wall-clock ok
                names = ", ".join(p.name for p in waiting)
                raise LaunchError(
                    f"{names} did not answer {waiting[0].url}/health within {timeout:g}s; see {waiting[0].log}",
                    waiting[0].name,
                )
            time.sleep(0.05)


def _check_exited(proc: NodeProcess) -> None:
    code = poll(proc)
    if code is not None:
        raise LaunchError(f"{proc.name} exited with status {code} while starting: {_tail(proc.log)}", proc.name, code)


def poll(proc: NodeProcess) -> int | None:
    """The exit status of ``proc`` if it has ended (reaping it if it is our child), else None.

    A process that is not this one's child and is gone, or whose pid another program now has,
    reports -1: its status is unknown here.
    """
    if proc.exit_code is not None:
        return proc.exit_code
    if not proc.pid:
        return -1
    try:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:  # not ours to reap: ended, or its pid now another program's (not this node's)
        return None if node_running(proc) else -1
    if pid == 0:
        return None
    proc.exit_code = os.waitstatus_to_exitcode(status)
    return proc.exit_code


def _healthy(proc: NodeProcess) -> bool:
    try:
        with urllib.request.urlopen(proc.url + "/health", timeout=0.5) as resp:
            answer = json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return bool(answer.get("name") == proc.name and answer.get("pid") == proc.pid)


def _tail(path: str, lines: int = 5) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def running(pid: int | None) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def node_running(proc: NodeProcess) -> bool:
    """Whether ``proc.pid`` still runs this node's command (not a reused pid); a stopped (paused) one does."""
    if not running(proc.pid):
        return False
    try:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except OSError:
        return True  # no /proc here: trust the state file
    # A node's program takes "--name NAME" (emulator.transport.launcher.node_argv): the name alone anywhere in
    # the command line also matched an unrelated process that had come to hold the pid (`sleep 300 n0`).
    name = proc.name.encode()
    return any(flag == b"--name" and value == name for flag, value in itertools.pairwise(cmdline)) or (
        b"--name=" + name in cmdline
    )


def stopped(proc: NodeProcess) -> bool:
    """Whether the node's process is stopped (SIGSTOP: ``capsim cluster pause``); False where /proc cannot say."""
    if not node_running(proc):
        return False
    try:
        with open(f"/proc/{proc.pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


def signal_node(proc: NodeProcess, sig: int) -> bool:
    """Send ``sig`` to the node's process group if it is still ours; whether it was sent."""
    if proc.pid is None or not node_running(proc):
        return False
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True


def stop(procs: list[NodeProcess], grace: float = 3.0) -> None:
    """SIGTERM every process (SIGCONT too, in case it is paused), SIGKILL what is left after ``grace``."""
    for proc in procs:
        if signal_node(proc, signal.SIGTERM):
            signal_node(proc, signal.SIGCONT)
    deadline = time.monotonic() + grace  # wall-clock ok
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:  # wall-clock ok
        time.sleep(0.02)
    for proc in procs:
        if _alive(proc):
            signal_node(proc, signal.SIGKILL)
    for proc in procs:
        reap(proc, 2.0)


def _alive(proc: NodeProcess) -> bool:
    return poll(proc) is None


def reap(proc: NodeProcess, timeout: float = 5.0) -> None:
    """Wait up to ``timeout`` for ``proc`` to end, reaping it if it is this process's child."""
    deadline = time.monotonic() + timeout  # wall-clock ok
    while _alive(proc) and time.monotonic() < deadline:  # wall-clock ok
        time.sleep(0.02)
