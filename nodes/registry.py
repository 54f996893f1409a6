"""Protocols by name, so scenario files and the command line can name them.

A name maps to an import path ``"module:Class"``, imported only when asked
for; a user's own protocol is named by its import path directly.
"""

from __future__ import annotations

import importlib
import traceback

__all__ = ["PROTOCOLS", "leader_of", "register", "resolve"]

#: Registered protocol name -> "module:Class".
PROTOCOLS: dict[str, str] = {
    "lin-kv": "nodes.kv:SingleKV",
    "sharded-kv": "nodes.sharded:ShardedKV",
    "primary-replica": "nodes.replication:PrimaryReplica",
    "quorum": "nodes.quorum:QuorumKV",
    "cache": "nodes.cache:Cache",
    "load-balancer": "nodes.balancer:LoadBalancer",
    "backend": "nodes.balancer:Backend",
    "breaker-caller": "nodes.breaker:Caller",
    "multi-primary": "nodes.multiprimary:MultiPrimary",
    "gateway": "nodes.gateway:Gateway",
    "registry": "nodes.discovery:Registry",
    "instance": "nodes.discovery:Instance",
    "broker": "nodes.queue:Broker",
    "consumer": "nodes.queue_client:Consumer",
    "publisher": "nodes.queue_client:Publisher",
    "sink": "nodes.queue_client:Sink",
    "service": "nodes.service:Service",
    "edge": "nodes.edge:Edge",
    "origin": "nodes.edge:Origin",
}


def register(name: str, path: str) -> None:
    """Make ``name`` stand for ``"module:Class"``."""
    if ":" not in path:
        raise ValueError(f"a protocol path looks like 'package.module:Class', got {path!r}")
    PROTOCOLS[name] = path


def resolve(name_or_path: str):
    """The Node class for a registered name or a ``module:Class`` path.

    Raises:
        ValueError: the name is unknown, or the path does not import (the
            message lists the registered names).
    """
    path = PROTOCOLS.get(name_or_path, name_or_path)
    if ":" not in path:
        known = ", ".join(sorted(PROTOCOLS))
        raise ValueError(f"unknown protocol {name_or_path!r}; use one of {known}, or 'module:Class' for your own")
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"protocol {name_or_path!r}: cannot import module {module_name!r} ({exc})") from None
    except Exception as exc:  # the module itself fails: a syntax error, or an exception while it runs
        raise ValueError(
            f"protocol {name_or_path!r}: importing module {module_name!r} raised {described(exc)}"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"protocol {name_or_path!r}: module {module_name!r} has no {attr!r}") from None


def described(exc: BaseException) -> str:
    """``exc`` in one line, with where it was raised: ``KeyError: 'x' (mine.py, line 4)``."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def leader_of(sim) -> str:
    """Who leads now in ``sim``'s cluster, as its protocol tells (``leader_of(sim)`` on the servers' node class).

    lin-kv: the configured leader, which holds every key. sharded-kv: the
    leader of the newest configuration, which drives membership changes.
    primary-replica: the live primary of the highest epoch. The same answer
    ``isolate-primary`` and ``target = "primary"`` nemeses use.

    Raises:
        ValueError: the servers' protocol has no leader (quorum, cache, ...), or there are no servers.
    """
    for name in sim.servers:
        node = sim.node(name)
        if node is not None:
            find = getattr(type(node), "leader_of", None)
            if find is None:
                raise ValueError(
                    f"{type(node).__name__} has no leader; leader_of works for lin-kv, sharded-kv and primary-replica"
                )
            return find(sim)
    raise ValueError("no live server to ask who leads; add servers with sim.add_node, or restart one")
