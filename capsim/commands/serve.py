r"""``capsim serve``: run one node as a real process, speaking JSON over HTTP.

    capsim serve --protocol lin-kv --name n1 --listen 127.0.0.1:9001 \
                 --peer n2=http://127.0.0.1:9002 --peer n3=http://127.0.0.1:9003

The node class is the one the simulation runs, unchanged. It listens on
127.0.0.1 unless ``--listen`` says otherwise. The cluster secret (the control
token, and the key that signs messages between servers: see
``emulator.transport.auth``) comes from the ``CAPSIM_TOKEN`` environment
variable, else from ``--token-file`` (made if missing: give every node the
same file), else one is generated and printed on stderr once the node
listens. Listening beyond loopback needs a secret given, not generated. A
real run is not replayable: ``--seed`` fixes the node's rng, not the
network's timing.

Exit status: 0 after SIGTERM or Ctrl-C, 2 a usage error (unknown protocol,
bad config, a peer named like this node, a public address without a
secret), 3 the address could not be bound (in use, or not local).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import json
import logging
import os
import secrets
import signal
import sys
import time
import traceback
from pathlib import Path

from capsim.cli import SUMMARIES, LinesFormatter, UsageError
from capsim.parallel import positive_int, positive_number, seed_value

__all__ = ["is_loopback", "main", "node_command", "parse_listen", "parse_peer", "register", "run"]


def node_command() -> list[str]:
    """The program that serves one node of a launched cluster: this module, run by this Python.

    It takes the flags ``emulator.transport.launcher.node_argv`` adds, and
    exits with ``BIND_FAILED`` when its address is taken (the launcher then
    picks other ports).
    """
    return [sys.executable, "-m", "capsim.commands.serve"]


def register(subparsers) -> None:
    """Add the ``serve`` subcommand to the ``capsim`` parser."""
    parser = subparsers.add_parser(
        "serve",
        help=SUMMARIES["serve"],
        description=__doc__.split("\n\n")[1],  # the synopsis, as the shell takes it: not rewrapped
        formatter_class=LinesFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, help="a registered protocol name or module:Class")
    parser.add_argument(
        "--import-path",
        action="append",
        default=[],
        metavar="DIR",
        help="look for the protocol's module in DIR first (repeat for more); a launched cluster's nodes get the "
        "directory the launcher found it in, so a restart from anywhere finds it",
    )
    parser.add_argument("--name", required=True, help="this node's name, e.g. n1")
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1 and a free port)",
    )
    parser.add_argument(
        "--peer",
        type=parse_peer,
        action="append",
        default=[],
        metavar="NAME=URL",
        help="another server node and its URL; repeat for each",
    )
    parser.add_argument(
        "--config",
        type=_config,
        default={},
        metavar="JSON",
        help="keyword arguments for the node class, as a JSON object",
    )
    parser.add_argument("--seed", type=seed_value, help="seed of the node's rng (default: from the OS)")
    parser.add_argument("--data-dir", metavar="DIR", help="keep the node's storage here, across restarts")
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the cluster secret here (made if missing; give every node the same file)",
    )
    parser.add_argument(
        "--max-body",
        type=positive_int,
        default=1 << 20,
        metavar="BYTES",
        help="largest request accepted (default 1 MiB)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_number,
        default=5.0,
        metavar="SECONDS",
        help="seconds a peer has to accept a batch of messages, and a sender to send a request's whole body "
        "(408 after; default 5)",
    )
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    parser.add_argument(
        "--parent-pid",
        type=positive_int,
        metavar="PID",
        help="exit when the process PID (this node's parent) is gone: for nodes owned by a run",
    )


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``:PORT`` or ``PORT`` -> (host, port); host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:9001, got {text!r}")
    return host, int(port)


def parse_peer(text: str) -> tuple[str, str]:
    """``NAME=URL`` -> (name, url); the URL an http(s) one with a host (every message would go nowhere else)."""
    from yarl import URL

    name, sep, url = text.partition("=")
    try:
        parsed = URL(url)
        usable = parsed.scheme in ("http", "https") and bool(parsed.host) and " " not in url and parsed.port
    except (ValueError, TypeError):
        usable = False
    if not sep or not name or not usable:
        raise argparse.ArgumentTypeError(f"expected NAME=URL such as n2=http://127.0.0.1:9002, got {text!r}")
    return name, url.rstrip("/")


def _config(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--config must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('--config must be a JSON object, e.g. \'{"leader": "n1"}\'')
    return value


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (see module doc)."""
    from nodes.registry import resolve

    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sys.path[:0] = [str(Path(d).absolute()) for d in args.import_path]
    try:
        factory = resolve(args.protocol)
    except ValueError as exc:
        hint = (
            "; for a module of your own, give its directory with --import-path DIR"
            if "cannot import" in str(exc)
            else ""
        )
        raise UsageError(f"{exc}{hint}") from None
    peers = _peers(args.name, args.peer)
    if args.parent_pid is not None:
        _check_parent(args.parent_pid)
    host, port = args.listen
    if args.data_dir is not None:
        from capsim.output import writable_dir

        writable_dir(args.data_dir, "--data-dir")
    given = _given_token(args.token_file)
    if not is_loopback(host):
        if given is None:
            raise UsageError(
                f"--listen {host}: reachable from the network, so the nodes need a shared secret to "
                "tell peers from impostors; set CAPSIM_TOKEN or --token-file PATH (the same for every node)"
            )
        print(
            f"capsim serve: warning: listening on {host}, reachable from the network; messages between servers "
            "are signed with the cluster secret but travel in clear (plain HTTP)",
            file=sys.stderr,
        )
    return asyncio.run(_serve(args, factory, host, port, peers, given))


def _peers(name: str, given: list[tuple[str, str]]) -> dict[str, str]:
    """The --peer values as a dict, refusing this node's own name and a name given twice."""
    peers: dict[str, str] = {}
    for peer, url in given:
        if peer == name:
            raise UsageError(f"--peer {peer}={url} names this node ({name}); list the other servers only")
        if peer in peers and peers[peer] != url:
            raise UsageError(f"--peer {peer} given twice ({peers[peer]} and {url}); give each peer once")
        peers[peer] = url
    return peers


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, or ``localhost``) is reachable from this machine only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _given_token(token_file: str | None) -> str | None:
    """The cluster secret from CAPSIM_TOKEN or ``token_file`` (made if missing), or None if neither is given."""
    token = os.environ.get("CAPSIM_TOKEN")
    if token:
        return token
    if not token_file:
        return None
    path = Path(token_file)
    if path.is_dir():
        raise UsageError(f"--token-file {path}: a directory is there; give a file (it is made if missing)")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path)
    except OSError as exc:
        raise UsageError(
            f"--token-file {path}: cannot make it ({exc.strerror or exc}); give a file you can write"
        ) from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return token


def _read_token(path: Path, wait: float = 2.0) -> str:
    """The token in ``path``, waiting briefly for a node started at the same moment to finish writing it."""
    for _ in range(int(wait / 0.05)):
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
        time.sleep(0.05)  # wall-clock ok
    raise OSError(f"--token-file {path} is empty; delete it to have a new secret made, or write one in it")


async def _serve(args, factory, host: str, port: int, peers: dict[str, str], token: str | None) -> int:
    from emulator.errors import EmulatorError
    from emulator.transport.host import NodeHost
    from emulator.transport.processes import BIND_FAILED
    from nodes.registry import described

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before anything is announced: a stop at any moment is clean
        loop.add_signal_handler(sig, stop.set)
    generated = token is None
    node = NodeHost(
        args.name,
        factory,
        args.config,
        host=host,
        port=port,
        peers=peers,
        token=token or secrets.token_urlsafe(32),
        seed=args.seed,
        data_dir=args.data_dir,
        max_body=args.max_body,
        protocol=args.protocol,
        timeout=args.timeout,
    )
    try:
        await node.start()
    except OSError as exc:
        print(f"capsim serve: error: cannot listen on {host}:{port}: {_bind_advice(exc, host)}", file=sys.stderr)
        return BIND_FAILED
    except Exception as exc:
        if os.environ.get("CAPSIM_TRACEBACK"):
            traceback.print_exc()
        what = f"{type(exc).__name__}: {exc}" if isinstance(exc, EmulatorError) else described(exc)
        print(f"capsim serve: error: cannot start {args.protocol} as {args.name}: {what}", file=sys.stderr)
        return 2
    if generated:  # only now: a node that failed to start has no secret worth showing
        print(
            f"capsim serve: generated the cluster secret (control token; its peers need the same): "
            f"CAPSIM_TOKEN={node.token}",
            file=sys.stderr,
            flush=True,
        )
    print(f"capsim serve: {args.name} ({args.protocol}) listening on {node.url}", flush=True)
    if args.parent_pid is not None:
        watch = asyncio.ensure_future(_watch_parent(args.parent_pid, stop))
    await stop.wait()
    if args.parent_pid is not None:
        watch.cancel()
    await node.stop()
    return 0


def _bind_advice(exc: OSError, host: str) -> str:
    """Why an address cannot be bound, and what to give instead."""
    reason = str(exc.strerror or exc).rsplit("): ", 1)[-1]  # aiohttp's text starts "error while ... on address (...): "
    if exc.errno == errno.EADDRINUSE:
        return f"address already in use; pick another port, or --listen {host}:0 for a free one"
    if exc.errno == errno.EACCES:
        return f"{reason}; pick a port above 1023, or --listen {host}:0 for a free one"
    return f"{reason}; give an address of this machine, such as 127.0.0.1"


def _check_parent(pid: int) -> None:
    """Refuse a --parent-pid that is not this process's parent: the node would stop as soon as it listened."""
    if os.getppid() == pid:
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise UsageError(
            f"--parent-pid {pid}: no such process (if it was the parent, it is gone already); give the pid of the "
            "process that starts capsim serve, or leave --parent-pid out"
        ) from None
    except PermissionError:  # it exists, owned by another user
        pass
    raise UsageError(
        f"--parent-pid {pid}: not this process's parent (that is {os.getppid()}); give the pid of the process "
        "that starts capsim serve, or leave --parent-pid out"
    )


async def _watch_parent(pid: int, stop: asyncio.Event, every: float = 0.5) -> None:
    """Set ``stop`` once ``pid`` is no longer this process's parent (it died, even by SIGKILL)."""
    while os.getppid() == pid:
        await asyncio.sleep(every)
    print(f"capsim serve: parent process {pid} is gone; stopping", file=sys.stderr)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    """Run ``capsim serve`` alone (``python -m capsim.commands.serve``), without the other commands."""
    from capsim.cli import Parser, exit_epilog

    parser = Parser(prog="capsim serve", epilog=exit_epilog("serve"))
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"capsim serve: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the token file cannot be read or made
        print(f"capsim serve: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
