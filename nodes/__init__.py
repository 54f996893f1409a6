"""capsim's protocol library: the systems whose trade-offs capsim exists to show.

Every key-value store speaks Maelstrom's lin-kv (read, write, cas). Each
module's docstring states what its protocol guarantees and what it gives up.

- ``SingleKV`` (``lin-kv``): one copy on one leader; linearizable, unavailable without it.
- ``ShardedKV`` (``sharded-kv``): one copy per key, placed by a consistent-hash ring; CP per shard.
- ``PrimaryReplica`` (``primary-replica``): a primary's log, sync / semi-sync / async, failover with fencing.
- ``QuorumKV`` (``quorum``): Dynamo-style N/R/W, LWW or vector clocks, sloppy quorum, hinted handoff, anti-entropy.
- ``MultiPrimary`` (``multi-primary``): every node takes writes; LWW, siblings or CRDTs (``nodes.crdt``).
- ``Broker`` (``broker``), ``Producer``, ``Publisher`` (``publisher``), ``Consumer`` (``consumer``), ``Sink``
  (``sink``): a partitioned queue with consumer groups; at-least-once, idempotent producers and sinks.
- ``Gateway`` (``gateway``): tokens, per-client token buckets (per replica or shared), routes, deadlines.
- ``Registry`` (``registry``), ``Instance`` (``instance``), ``Resolver``: discovery with TTL leases, AP or CP.
- ``Service`` (``service``): a microservice with workers, endpoints calling others, breakers and deadlines.
- ``Edge`` (``edge``) and ``Origin`` (``origin``): a CDN: TTLs, request coalescing, stale-if-error.
- ``CircuitBreaker`` and ``Caller``; ``LoadBalancer`` (with a ``Canary``) and ``Backend``; ``Cache`` and ``LRU``.
- ``HashRing``: consistent hashing on mmh3 with virtual nodes and weights.
- ``resolve(name_or_path)``: the Node class for a registered name or ``module:Class``.
- ``leader_of(sim)``: who leads now (lin-kv, sharded-kv, primary-replica), for testers and leader-aimed nemeses.
"""

import importlib
from typing import TYPE_CHECKING, Any

from nodes.registry import PROTOCOLS, leader_of, register, resolve

if TYPE_CHECKING:
    from nodes.balancer import Backend, LoadBalancer
    from nodes.breaker import BreakerOpen, Caller, CircuitBreaker
    from nodes.cache import LRU, Cache
    from nodes.canary import Canary
    from nodes.discovery import Instance, Registry, Resolver
    from nodes.edge import Edge, Origin
    from nodes.gateway import Gateway, TokenBucket
    from nodes.hashring import HashRing
    from nodes.kv import SingleKV
    from nodes.multiprimary import MultiPrimary
    from nodes.queue import Broker
    from nodes.queue_client import Consumer, Producer, Publisher, Sink
    from nodes.quorum import QuorumKV
    from nodes.replication import PrimaryReplica
    from nodes.service import Service
    from nodes.sharded import ShardedKV

#: Each protocol's public names -> the module that holds them, imported on first use (``nodes.LoadBalancer``,
#: ``from nodes import QuorumKV``): a scenario of one protocol imports that protocol alone (``nodes.registry``
#: resolves a name to its module), so a ``capsim chaos --seeds`` sweep forks its workers sooner.
_LAZY = {
    "Backend": "nodes.balancer",
    "BreakerOpen": "nodes.breaker",
    "Broker": "nodes.queue",
    "Cache": "nodes.cache",
    "Caller": "nodes.breaker",
    "Canary": "nodes.canary",
    "CircuitBreaker": "nodes.breaker",
    "Consumer": "nodes.queue_client",
    "Edge": "nodes.edge",
    "Gateway": "nodes.gateway",
    "HashRing": "nodes.hashring",
    "Instance": "nodes.discovery",
    "LRU": "nodes.cache",
    "LoadBalancer": "nodes.balancer",
    "MultiPrimary": "nodes.multiprimary",
    "Origin": "nodes.edge",
    "PrimaryReplica": "nodes.replication",
    "Producer": "nodes.queue_client",
    "Publisher": "nodes.queue_client",
    "QuorumKV": "nodes.quorum",
    "Registry": "nodes.discovery",
    "Resolver": "nodes.discovery",
    "Service": "nodes.service",
    "ShardedKV": "nodes.sharded",
    "SingleKV": "nodes.kv",
    "Sink": "nodes.queue_client",
    "TokenBucket": "nodes.gateway",
}

__all__ = [
    "LRU",
    "PROTOCOLS",
    "Backend",
    "BreakerOpen",
    "Broker",
    "Cache",
    "Caller",
    "Canary",
    "CircuitBreaker",
    "Consumer",
    "Edge",
    "Gateway",
    "HashRing",
    "Instance",
    "LoadBalancer",
    "MultiPrimary",
    "Origin",
    "PrimaryReplica",
    "Producer",
    "Publisher",
    "QuorumKV",
    "Registry",
    "Resolver",
    "Service",
    "ShardedKV",
    "SingleKV",
    "Sink",
    "TokenBucket",
    "leader_of",
    "register",
    "resolve",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nodes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
