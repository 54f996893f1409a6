"""``capsim cluster``: a local cluster of real node processes, and faults on it.

    capsim cluster up --protocol lin-kv --nodes 3     # start, wait until healthy, print addresses
    capsim cluster status                             # who is up, counters, active faults
    capsim cluster workload --ops 200                 # lin-kv clients; history + linearizability
    capsim cluster partition n0 n1,n2                 # groups are comma-separated names
    capsim cluster heal
    capsim cluster crash n2 / restart n2 / pause n2 / resume n2 / isolate n2
    capsim cluster link n0 n1 --loss 0.5 --latency 0.05
    capsim cluster down                               # stop every node, remove the state file
    capsim cluster down --purge                       # ... and the nodes' logs and storage

``up`` binds every node to 127.0.0.1 (``--host`` to change it), writes the
state file (``.capsim-cluster.json`` by default: pids, URLs, the commands,
and the control token, readable by its owner only) and keeps each node's
log and storage in a directory beside it (``.capsim-cluster.d``), which
``down`` keeps (and names) unless given ``--purge``. If any
node fails to start, every node already started is stopped before ``up``
exits with status 1: no orphans. A real cluster runs in real time and is not
replayable.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from capsim.cli import SUMMARIES, UsageError
from capsim.output import path_text, writable_file
from capsim.parallel import positive_int, positive_number, seconds_value, seed_value

__all__ = ["DEFAULT_STATE", "down", "purge", "register", "up"]

DEFAULT_STATE = ".capsim-cluster.json"


def register(subparsers) -> None:
    """Add ``cluster`` and its subcommands to the ``capsim`` parser."""
    parser = subparsers.add_parser("cluster", help=SUMMARIES["cluster"], description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up_parser = _sub(sub, "up", "start N node processes and wait until they are healthy", _run_up)
    up_parser.add_argument("--protocol", default="lin-kv", help="registered protocol or module:Class (default lin-kv)")
    up_parser.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    up_parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    up_parser.add_argument("--config", default="{}", metavar="JSON", help="keyword arguments for the node class")
    up_parser.add_argument(
        "--seed",
        type=seed_value,
        help="seed every node's rngs as the simulation of that seed does (timing stays real: not replayable)",
    )
    up_parser.add_argument(
        "--timeout", type=positive_number, default=15.0, help="seconds to wait for health (default 15)"
    )
    down_parser = _sub(sub, "down", "stop every node and remove the state file (logs and storage stay)", _run_down)
    down_parser.add_argument(
        "--purge",
        action="store_true",
        help="also remove the nodes' logs and storage (the .d directory beside the state file)",
    )
    _sub(sub, "status", "show each node's health, counters and the active faults", _run_status)
    part = _sub(sub, "partition", "cut traffic between groups (n0 n1,n2)", _fault("partition"))
    part.add_argument("groups", nargs="+", metavar="GROUP", help="comma-separated node names")
    _sub(sub, "heal", "remove every partition", _fault("heal"))
    for action, text in (
        ("isolate", "cut a node off from all others"),
        ("crash", "kill a node (SIGKILL)"),
        ("restart", "start a crashed node again"),
        ("pause", "stop a node (SIGSTOP)"),
        ("resume", "continue a paused node (SIGCONT)"),
    ):
        _sub(sub, action, text, _fault(action)).add_argument("name", help="the node")
    link = _sub(sub, "link", "set loss, latency or duplication on SRC->DST (both ways with --both)", _fault("link"))
    link.add_argument("src")
    link.add_argument("dst")
    link.add_argument("--latency", type=seconds_value, help="extra seconds per message")
    link.add_argument("--loss", type=float, help="probability a message is dropped")
    link.add_argument("--duplicate", type=float, help="probability a message is sent twice")
    link.add_argument("--both", action="store_true", help="both directions")
    work = _sub(sub, "workload", "run lin-kv clients against the cluster and check the history", _run_workload)
    work.add_argument("--clients", type=positive_int, default=3, help="clients (default 3)")
    work.add_argument("--ops", type=positive_int, default=100, help="operations per client (default 100)")
    work.add_argument("--keys", type=positive_int, default=3, help="keys (default 3)")
    work.add_argument("--timeout", type=positive_number, default=1.0, help="seconds per operation (default 1)")
    work.add_argument("--seed", type=seed_value, default=0, help="seed of the workload's choices")
    work.add_argument("--out", type=path_text, metavar="FILE", help="write the history here (JSON Lines)")


def _sub(sub, name: str, text: str, func):
    parser = sub.add_parser(name, help=text, description=text)
    parser.add_argument(
        "--state", type=path_text, default=DEFAULT_STATE, metavar="PATH", help=f"state file (default {DEFAULT_STATE})"
    )
    parser.set_defaults(func=func)
    return parser


# -- up and down ------------------------------------------------------------------------


def up(
    protocol: str = "lin-kv",
    nodes: int = 3,
    state_path=DEFAULT_STATE,
    host: str = "127.0.0.1",
    config: dict | None = None,
    seed: int | None = None,
    timeout: float = 15.0,
):
    """Start a cluster of ``nodes`` processes and write its state file; returns the ``ClusterState``.

    Raises:
        UsageError: a cluster is already up at ``state_path``, ``nodes`` < 1, or more node processes than
            memory holds (``capsim.limits.check_processes``).
        LaunchError: a node did not start (every started node has been stopped).
    """
    from capsim.commands.serve import node_command
    from emulator.transport.launcher import launch_cluster
    from emulator.transport.processes import NodeProcess, node_running, stop

    if nodes < 1:
        raise UsageError(f"--nodes must be at least 1, got {nodes}")
    from capsim import limits

    try:
        limits.check_processes(nodes)
    except limits.TooBig as exc:
        raise UsageError(str(exc)) from None
    state_path = Path(state_path)
    if state_path.exists() and any(node_running(p) for p in _load(state_path).nodes):  # not a reused pid
        raise UsageError(f"a cluster is already up ({state_path}); run 'capsim cluster down' first")
    names = [f"n{i}" for i in range(nodes)]  # n0.., as in the simulation and scenario files
    procs: list[NodeProcess] = []
    try:
        state = launch_cluster(
            node_command(),
            protocol,
            names,
            _workdir(state_path),
            host=host,
            config=config,
            seed=seed,
            timeout=timeout,
            nodes=procs,
        )
        state.save(state_path)
    except BaseException:
        stop(procs)  # failed, interrupted, or no state file: nobody could find them again
        raise
    return state


def down(state_path=DEFAULT_STATE) -> list[str]:
    """Stop every node of the cluster at ``state_path`` and remove the file; returns the names stopped.

    Raises:
        UsageError: no cluster state there.
    """
    from emulator.transport.processes import node_running, stop

    state = _load(state_path)
    live = [p for p in state.nodes if node_running(p)]
    stop(state.nodes)
    Path(state_path).unlink(missing_ok=True)
    return [p.name for p in live]


def _workdir(state_path: Path) -> Path:
    name = state_path.name[:-5] if state_path.name.endswith(".json") else state_path.name
    return state_path.with_name(name + ".d")


def _load(state_path):
    from emulator.transport.processes import ClusterState

    if Path(state_path).is_dir():
        raise UsageError(
            f"--state {state_path} is a directory; give the path of a file, e.g. {Path(state_path) / 'cluster.json'}"
        )
    try:
        return ClusterState.load(state_path)
    except FileNotFoundError:
        raise UsageError(f"no cluster state at {state_path}; start one with 'capsim cluster up'") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _run_up(args) -> int:
    from emulator.transport.errors import LaunchError
    from nodes.registry import resolve

    try:
        resolve(args.protocol)  # fail here, once, rather than in every node process
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        config = json.loads(args.config)
    except ValueError as exc:
        raise UsageError(f"--config must be a JSON object: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f'--config must be a JSON object, e.g. \'{{"leader": "n0"}}\', got {type(config).__name__}')
    _check_host(args.host)
    try:
        state = up(args.protocol, args.nodes, args.state, args.host, config, args.seed, args.timeout)
    except LaunchError as exc:
        print(
            f"capsim cluster up: {exc}\ncapsim cluster up: stopped every node started; nothing is left running",
            file=sys.stderr,
        )
        return 1
    from capsim.commands.serve import is_loopback

    if not is_loopback(args.host):
        print(
            f"capsim cluster up: warning: the nodes listen on {args.host}, reachable from the network; messages "
            "between them are signed with the cluster secret but travel in clear (plain HTTP)",
            file=sys.stderr,
        )
    for proc in state.nodes:
        print(f"{proc.name}  {proc.url}  pid {proc.pid}")
    print(
        f"{len(state.nodes)} {args.protocol} nodes up; state in {args.state} (it holds the control token); "
        f"logs in {_workdir(Path(args.state))}. Stop with: capsim cluster down"
    )
    return 0


def _check_host(host: str) -> None:
    """Refuse, before any node starts, an address no node could listen on."""
    from emulator.transport.processes import free_ports

    try:
        free_ports(1, host)
    except OSError as exc:
        raise UsageError(
            f"--host {host}: cannot listen there ({exc.strerror or exc}); "
            "give an address of this machine, such as 127.0.0.1"
        ) from None


def _run_down(args) -> int:
    workdir = _workdir(Path(args.state))
    if args.purge and not Path(args.state).exists() and workdir.is_dir():
        purge(workdir)  # the cluster is already down; what it left behind goes now
        print(f"no cluster was up at {args.state}; removed {workdir}/ (node logs and storage)")
        return 0
    names = down(args.state)
    print(f"stopped {', '.join(names) or 'nothing (no node was running)'}; removed {args.state}")
    if args.purge and workdir.is_dir():
        purge(workdir)
        print(f"removed {workdir}/ (node logs and storage)")
    elif workdir.is_dir():
        print(
            f"node logs and storage are kept in {workdir.resolve()}/; remove them with: capsim cluster down --purge"
            + ("" if args.state == DEFAULT_STATE else f" --state {args.state}")
        )
    return 0


def purge(workdir: Path) -> None:
    """Remove a cluster's directory of logs and storage, if it holds only what ``up`` puts there.

    Raises:
        UsageError: it holds something else (capsim did not make it all: remove it yourself).
    """
    strangers = sorted(
        p.name
        for p in workdir.iterdir()
        if not (p.name == "data" and p.is_dir()) and not (p.suffix == ".log" and p.is_file())
    )
    if strangers:
        raise UsageError(
            f"{workdir}/ holds files capsim did not make ({', '.join(strangers[:3])}); "
            "nothing removed: look, then remove it yourself"
        )
    shutil.rmtree(workdir)


# -- status, faults, workload ------------------------------------------------------------------


def _run_status(args) -> int:
    from emulator.transport.control import ControlClient
    from emulator.transport.errors import ControlError
    from emulator.transport.processes import node_running, stopped

    state = _load(args.state)

    async def fetch(proc):
        client = ControlClient(proc.url, state.token, timeout=1.0)
        try:
            status = await client.status()
        except ControlError as exc:
            return {"error": str(exc)}
        finally:
            await client.close()
        if (status.get("name"), status.get("pid")) != (proc.name, proc.pid) or "counters" not in status:
            # a stale state file: its port now another program's, or another cluster's node
            return {
                "error": f"{proc.url} is not this node: it answers as {status.get('name')!r}, pid {status.get('pid')}"
            }
        return status

    async def fetch_all():
        return await asyncio.gather(*(fetch(p) for p in state.nodes))

    statuses = asyncio.run(fetch_all())
    print(f"{state.protocol} cluster, {len(state.nodes)} nodes ({args.state})")
    for proc, status in zip(state.nodes, statuses):
        if "error" in status:
            if not node_running(proc):
                word = f"down (capsim cluster restart {proc.name})"
            elif stopped(proc):
                word = f"paused (SIGSTOP; capsim cluster resume {proc.name})"
            else:
                word = f"not answering: {status['error']}"
            print(f"  {proc.name}  {proc.url}  {word}")
            continue
        c = status["counters"]
        print(
            f"  {proc.name}  {proc.url}  pid {status['pid']}  up  received {c['received']}  sent {c.get('sent', 0)}"
            f"  dropped {c.get('dropped', 0) + sum(c['inbound_dropped'].values())}  errors {len(status['errors'])}"
        )
    faults = next((s.get("faults") for s in statuses if "faults" in s), None)
    print("  faults: " + ("; ".join(faults) if faults else "none"))
    return 0


def _fault(action: str):
    def run(args) -> int:
        return asyncio.run(_apply_fault(action, args))

    return run


async def _apply_fault(action: str, args) -> int:
    from emulator.errors import ConfigError
    from emulator.transport.cluster import RealCluster
    from emulator.transport.errors import ControlError, LaunchError

    state = _load(args.state)
    if action == "partition" and len(args.groups) < 2:
        raise UsageError(
            "partition needs at least two groups of comma-separated names, e.g. capsim cluster partition n0,n1 n2,n3,n4"
        )
    for i, group in enumerate(getattr(args, "groups", None) or [], 1):
        if not [n for n in group.split(",") if n]:
            raise UsageError(f"partition group {i} ({group!r}) names no node; give comma-separated names, e.g. n1,n2")
    if action == "link":
        _check_link(args)
    cluster = await RealCluster.from_state(args.state)
    try:
        if action == "resume" and cluster.alive(args.name) and not cluster.control.paused(args.name):
            # nothing to continue: it said "resume: done" of a node that was running
            print(f"resume: {args.name} is not paused (capsim cluster pause {args.name} stops it); nothing to do")
            return 0
        await _call_fault(cluster, action, args)
    except KeyError as exc:
        raise UsageError(str(exc.args[0]) if exc.args else str(exc)) from None  # str(KeyError) is quoted
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except ControlError as exc:
        print(f"capsim cluster {action}: {exc}", file=sys.stderr)
        return 1
    except LaunchError as exc:
        print(
            f"capsim cluster {action}: {exc}\ncapsim cluster {action}: {args.name} stays down; clear what stopped it "
            f"(its log: {state.node(args.name).log}), then run: capsim cluster restart {args.name}",
            file=sys.stderr,
        )
        return 1
    finally:
        await cluster.close()
    print(f"{action}: done" + (f"; active faults: {'; '.join(_describe(cluster))}" if _describe(cluster) else ""))
    if action in _LINK_ACTIONS:
        for name in cluster.servers:
            if not cluster.alive(name):
                print(f"  {name} is down: it is given the faults when restarted (capsim cluster restart {name})")
            elif cluster.control.paused(name):
                print(f"  {name} is paused: it is given the faults when resumed (capsim cluster resume {name})")
    return 0


#: The faults that change links, which a node that is down receives when it restarts.
_LINK_ACTIONS = ("partition", "heal", "isolate", "link")


def _check_link(args) -> None:
    """Refuse a link from a node to itself, or one with nothing to set (either would show as an active fault)."""
    if args.src == args.dst:
        raise UsageError(f"a link joins two different nodes; got {args.src} to itself")
    if args.latency is None and args.loss is None and args.duplicate is None:
        raise UsageError("give --latency, --loss or --duplicate (or several) to set on the link")


async def _call_fault(cluster, action: str, args) -> None:
    if action == "partition":
        await cluster.network.partition(*[[n for n in g.split(",") if n] for g in args.groups])
    elif action == "heal":
        await cluster.network.heal()
    elif action == "isolate":
        await cluster.network.isolate(args.name)
    elif action == "link":
        method = cluster.network.set_link if args.both else cluster.network.set_link_oneway
        await method(args.src, args.dst, latency=args.latency, loss=args.loss, duplicate=args.duplicate)
    else:
        await getattr(cluster, action)(args.name)


def _describe(cluster) -> list[str]:
    from emulator.transport.links import LinkFaults

    return LinkFaults.from_json(cluster.network.faults).describe()


def _run_workload(args) -> int:
    _load(args.state)
    if args.out is not None:
        writable_file(args.out)
    running: list = []  # the RealCluster, once connected: its history is written if the run is interrupted
    try:
        return asyncio.run(_workload(args, running))
    except KeyboardInterrupt:
        if args.out and running:  # a real run cannot be replayed: keep what it recorded
            history = running[0].history
            history.write(args.out)
            print(
                f"interrupted: the {len(list(history))} events recorded so far are in {args.out} "
                "(operations still in flight have no completion: a checker counts them as info)",
                file=sys.stderr,
                flush=True,
            )
        raise


async def _workload(args, running: list) -> int:
    from emulator.check import linearizable
    from emulator.transport.cluster import RealCluster
    from faults.processes import kv_clients

    cluster = await RealCluster.from_state(args.state)
    running.append(cluster)
    try:
        if not any(cluster.alive(name) for name in cluster.servers):
            raise UsageError(
                "every node of the cluster is down; bring one back first (capsim cluster restart "
                f"{cluster.servers[0]}), or start a new cluster with capsim cluster up"
            )
        await kv_clients(cluster, args.clients, args.ops, args.keys, args.timeout, args.seed)
    finally:
        await cluster.close()
    ops = cluster.history.client_ops()
    counts = {kind: sum(1 for op in ops if op["type"] == kind) for kind in ("ok", "fail", "info")}
    if args.out:
        cluster.history.write(args.out)
    head = (
        f"{args.clients} clients, {sum(counts.values())} ops in {cluster.now:.1f} s: ok {counts['ok']}, "
        f"fail {counts['fail']}, info {counts['info']}"
    )
    written = f"; written to {args.out}" if args.out else ""
    if not counts["ok"]:  # nothing succeeded, nothing tested: unknown (Jepsen's stats checker: invalid)
        print(f"{head}; no operation succeeded ({_first_error(ops)}): nothing to check{written}")
        return 2
    verdict = linearizable(list(cluster.history), model="cas_register", timeout=30)
    words = {True: "linearizable", False: "NOT linearizable", None: "unknown (checker timed out)"}
    print(f"{head}; history {words[verdict.valid]}{written}")
    return {True: 0, False: 1, None: 2}[verdict.valid]


def _first_error(ops: list) -> str:
    """What the first operation that did not succeed was told, for a workload in which none did."""
    for op in ops:
        error = op.get("error")
        if op["type"] in ("fail", "info") and error:
            return f"the first was told: {error[1] if isinstance(error, list) and len(error) == 2 else error}"
    return "every one timed out: are the nodes up?"
