"""``capsim serve``: run one node as a real process, speaking JSON over HTTP.

    capsim serve --protocol lin-kv --name n1 --listen 127.0.0.1:9001 \\
                 --peer n2=http://127.0.0.1:9002 --peer n3=http://127.0.0.1:9003

The node class is the one the simulation runs, unchanged. It listens on
127.0.0.1 unless ``--listen`` says otherwise. The control token comes from
the ``CAPSIM_TOKEN`` environment variable, else from ``--token-file`` (made
if missing), else one is generated and printed on stderr. A real run is not
replayable: ``--seed`` fixes the node's rng, not the network's timing.

Exit status: 0 after SIGTERM or Ctrl-C, 2 a usage error (unknown protocol,
bad config), 3 the address could not be bound.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import secrets
import signal
import sys
import traceback
from pathlib import Path

__all__ = ["register", "run", "main", "parse_listen", "parse_peer"]

#: Exit status when the address cannot be bound (the cluster launcher retries other ports).
BIND_FAILED = 3


def register(subparsers) -> None:
    """Add the ``serve`` subcommand to the ``capsim`` parser."""
    parser = subparsers.add_parser("serve", help="run one node as a real process (JSON over HTTP)",
                                   description=__doc__.split("\n\n")[1].strip())
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, help="a registered protocol name or module:Class")
    parser.add_argument("--name", required=True, help="this node's name, e.g. n1")
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0), metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1 and a free port)")
    parser.add_argument("--peer", type=parse_peer, action="append", default=[], metavar="NAME=URL",
                        help="another server node and its URL; repeat for each")
    parser.add_argument("--config", type=_config, default={}, metavar="JSON",
                        help="keyword arguments for the node class, as a JSON object")
    parser.add_argument("--seed", type=int, help="seed of the node's rng (default: from the OS)")
    parser.add_argument("--data-dir", metavar="DIR", help="keep the node's storage here, across restarts")
    parser.add_argument("--token-file", metavar="PATH", help="read the control token here (made if missing)")
    parser.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES",
                        help="largest request accepted (default 1 MiB)")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--parent-pid", type=int, metavar="PID",
                        help="exit when the process PID (this node's parent) is gone: for nodes owned by a run")


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
    """``NAME=URL`` -> (name, url)."""
    name, sep, url = text.partition("=")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected NAME=URL such as n2=http://127.0.0.1:9002, got {text!r}")
    return name, url.rstrip("/")


def _config(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--config must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--config must be a JSON object, e.g. '{\"leader\": \"n1\"}'")
    return value


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (see module doc)."""
    from capsim.cli import UsageError
    from nodes.registry import resolve

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        factory = resolve(args.protocol)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    host, port = args.listen
    if not _loopback(host):
        print(f"capsim serve: warning: listening on {host}, reachable from the network; "
              "POST /msg has no authentication", file=sys.stderr)
    return asyncio.run(_serve(args, factory, host, port, _token(args.token_file)))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _token(token_file: str | None) -> str:
    token = os.environ.get("CAPSIM_TOKEN")
    if token:
        return token
    if token_file:
        path = Path(token_file)
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
        return token
    token = secrets.token_urlsafe(32)
    print(f"capsim serve: control token: {token}", file=sys.stderr)
    return token


async def _serve(args, factory, host: str, port: int, token: str) -> int:
    from emulator.errors import EmulatorError
    from emulator.transport.host import NodeHost

    node = NodeHost(args.name, factory, args.config, host=host, port=port, peers=dict(args.peer), token=token,
                    seed=args.seed, data_dir=args.data_dir, max_body=args.max_body, protocol=args.protocol)
    try:
        await node.start()
    except OSError as exc:
        print(f"capsim serve: error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return BIND_FAILED
    except Exception as exc:  # noqa: BLE001 - the node's own constructor may raise anything
        if not isinstance(exc, (EmulatorError, TypeError, ValueError)):
            traceback.print_exc()
        print(f"capsim serve: error: cannot start {args.protocol} as {args.name}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 2
    print(f"capsim serve: {args.name} ({args.protocol}) listening on {node.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.parent_pid is not None:
        watch = asyncio.ensure_future(_watch_parent(args.parent_pid, stop))
    await stop.wait()
    if args.parent_pid is not None:
        watch.cancel()
    await node.stop()
    return 0


async def _watch_parent(pid: int, stop: asyncio.Event, every: float = 0.5) -> None:
    """Set ``stop`` once ``pid`` is no longer this process's parent (it died, even by SIGKILL)."""
    while os.getppid() == pid:
        await asyncio.sleep(every)
    print(f"capsim serve: parent process {pid} is gone; stopping", file=sys.stderr)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    """Run ``capsim serve`` alone (``python -m capsim.commands.serve``), without the other commands."""
    from capsim.cli import UsageError

    parser = argparse.ArgumentParser(prog="capsim serve")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"capsim serve: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
