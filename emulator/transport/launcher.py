"""Start a cluster of node processes on this machine: free ports, and a fresh try when one is taken.

``launch_cluster`` is the one launcher (``capsim cluster up`` and ``capsim
chaos --real`` both use it). It picks a free port per node, builds each
node's command with ``node_argv``, starts every node and waits until all
are healthy (``processes.launch``: on any failure it stops every process it
started). A port can be taken by another program between the moment it is
picked and the moment the node binds it; such a node exits with
``BIND_FAILED``, and the launcher picks fresh ports and starts the cluster
again, up to ``ATTEMPTS`` times.

Which program serves a node is the caller's business (``command``, such as
``capsim serve``'s): the kernel does not know the command line, only the
flags every node program takes (``node_argv``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from emulator.transport.errors import LaunchError
from emulator.transport.processes import BIND_FAILED, ClusterState, NodeProcess, free_ports, launch

__all__ = ["ATTEMPTS", "import_root", "launch_cluster", "node_argv"]

#: Tries, each on fresh ports, when a port was taken between picking and binding it.
ATTEMPTS = 3


def node_argv(
    command: Sequence[str],
    protocol: str,
    name: str,
    host: str,
    port: int,
    peers: dict[str, str],
    data_dir: str,
    config: dict[str, object],
    seed: int | None = None,
    parent_pid: int | None = None,
    import_path: str | None = None,
) -> list[str]:
    """The argv that runs one node: ``command`` and the flags a node program takes.

    Args:
        command: the program that serves one node, e.g. ``[sys.executable,
            "-m", "capsim.commands.serve"]``.
        protocol: a registered protocol name or ``module:Class``.
        name: the node's name.
        host: the address the node binds.
        port: the port it listens on.
        peers: the other servers, name -> base URL.
        data_dir: where it keeps its storage, across restarts.
        config: keyword arguments for the node class (JSON).
        seed: the seed of the node's rng streams (None: the node draws one).
        parent_pid: the node stops when this process is gone.
        import_path: a directory the node searches first for the protocol's module.
    """
    argv = [
        *command,
        "--protocol",
        protocol,
        "--name",
        name,
        "--listen",
        f"{_bracket(host)}:{port}",
        "--data-dir",
        data_dir,
        "--config",
        json.dumps(config),
    ]
    for peer, url in peers.items():
        argv += ["--peer", f"{peer}={url}"]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if parent_pid is not None:
        argv += ["--parent-pid", str(parent_pid)]
    if import_path is not None:
        argv += ["--import-path", import_path]
    return argv


def launch_cluster(
    command: Sequence[str],
    protocol: str,
    names: Sequence[str],
    workdir: Path,
    *,
    host: str = "127.0.0.1",
    config: dict[str, object] | None = None,
    seed: int | None = None,
    timeout: float = 15.0,
    parent_pid: int | None = None,
    nodes: list[NodeProcess] | None = None,
    abort: Callable[[], None] | None = None,
) -> ClusterState:
    """Start one node process per name on ``host`` and wait until all are healthy; returns the ``ClusterState``.

    Logs go to ``workdir/NAME.log``, storage to ``workdir/data`` (emptied
    first: the checkers assume every key starts empty), both named by
    absolute paths in the nodes' commands, so a node restarted from another
    working directory finds its storage again. So does a protocol of one's
    own (``module:Class``): the nodes' commands name the directory this
    process finds its module in (``--import-path``). Every node gets the
    same ``seed`` (see the comment in the body). Call from outside any event
    loop: it blocks until the nodes are healthy.

    Args:
        command: the program that serves one node (see ``node_argv``).
        protocol: a registered protocol name or ``module:Class``.
        names: the nodes' names.
        workdir: the directory of the nodes' logs and storage.
        host: the address every node binds.
        config: keyword arguments for the node class.
        seed: the seed of every node's rng streams (None: each draws one).
        timeout: seconds each attempt waits for the nodes' health.
        parent_pid: the nodes stop when this process is gone (None: they outlive it).
        nodes: a list that holds the node processes of the current attempt
            from before the first starts, for a caller that must stop them
            whatever happens.
        abort: called between steps; raises to abort (see ``processes.launch``).

    Raises:
        LaunchError: a node did not start (every node started has been stopped).
    """
    workdir = Path(workdir).absolute()
    shutil.rmtree(workdir / "data", ignore_errors=True)
    token = secrets.token_urlsafe(32)
    env = {**os.environ, "CAPSIM_TOKEN": token}
    root = import_root(protocol)
    attempt = 1
    while True:
        procs = _processes(command, protocol, names, host, workdir, config or {}, seed, parent_pid, root)
        if nodes is not None:
            nodes[:] = procs
        try:
            launch(procs, env, timeout, abort)
            return ClusterState(protocol, token, procs)
        except LaunchError as exc:  # a port taken since it was picked: pick again
            if exc.returncode != BIND_FAILED or attempt == ATTEMPTS:
                raise
        attempt += 1


def _processes(
    command: Sequence[str],
    protocol: str,
    names: Sequence[str],
    host: str,
    workdir: Path,
    config: dict[str, object],
    seed: int | None,
    parent_pid: int | None,
    import_path: str | None = None,
) -> list[NodeProcess]:
    """One NodeProcess per name, each on a port free right now."""
    ports = dict(zip(names, free_ports(len(names), host)))
    urls = {name: f"http://{_bracket(host)}:{port}" for name, port in ports.items()}
    # Every node gets the run's seed itself, not seed + i. A node's streams are
    # named for it ("node:n1", "net:n1"; emulator.rng.derive_seed hashes the
    # name in), so nodes that share a seed still draw distinct streams, and
    # each draws exactly the streams the simulation of that seed gives the node
    # of that name: the seed replays the run's random choices. seed + i would
    # give n1 the streams of another seed's simulation, and make a node's
    # draws depend on its place in the list.
    return [
        NodeProcess(
            name,
            urls[name],
            node_argv(
                command,
                protocol,
                name,
                host,
                ports[name],
                {n: u for n, u in urls.items() if n != name},
                str(workdir / "data"),
                config,
                seed,
                parent_pid,
                import_path,
            ),
            str(workdir / f"{name}.log"),
        )
        for name in names
    ]


def import_root(protocol: str) -> str | None:
    """The directory this process imports ``module:Class``'s module from, or None.

    None for a registered name (no colon: the nodes import capsim's own
    protocols as this process does) and for a module this process cannot
    find (the node says so when it starts). For ``pkg.mod:Class`` in
    ``/work/pkg/mod.py`` it is ``/work``: the directory that must be on
    ``sys.path`` for ``pkg.mod`` to import.
    """
    if ":" not in protocol:
        return None
    module = protocol.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent package that does not import, or an empty name
        return None
    if spec is None or not spec.has_location or spec.origin is None:
        return None
    origin = Path(spec.origin).absolute()
    levels = module.count(".") + (1 if origin.stem == "__init__" else 0)
    return str(origin.parents[levels])


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
