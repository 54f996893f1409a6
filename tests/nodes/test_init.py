"""Tests of nodes/__init__.py: every protocol's names are there, and a protocol's module is imported on first use."""

import importlib
import inspect
import math
import re

import pytest

import emulator as em
import nodes
from tests.common.imports import modules_of


def test_naming_one_protocol_imports_that_protocol_alone():
    """`import nodes` and resolving lin-kv import nodes.kv only: a one-protocol scenario pays for one protocol."""
    loaded = {m for m in modules_of("import nodes\nnodes.resolve('lin-kv')") if m.startswith("nodes.")}
    assert loaded == {"nodes.kv", "nodes.registry"}


@pytest.mark.parametrize("name", sorted(nodes.__all__))
def test_every_exported_name_is_its_modules_object(name):
    """`nodes.X` and `from nodes import X` give the very object X's module defines."""
    value = getattr(nodes, name)
    module = getattr(value, "__module__", "nodes.registry")  # PROTOCOLS, a dict, is the registry's
    assert getattr(importlib.import_module(module), name) is value
    assert name in dir(nodes)


def test_a_name_nodes_does_not_have_is_an_attribute_error():
    """A misspelt name fails as it would on any module (hasattr and from-import rely on that)."""
    with pytest.raises(AttributeError, match="no attribute 'SingleKVV'"):
        nodes.SingleKVV  # noqa: B018
    with pytest.raises(ImportError):
        exec("from nodes import SingleKVV")


# -- every time a constructor takes is checked as it is built --------------------------------------

_TOPICS = {"t": 1}
#: What each exported class needs besides the setting tried: keyword arguments of a node, or, for a helper
#: that a node owns, a function of that node (and the setting) that builds it.
_BUILD = {
    "Backend": {},
    "Broker": {"brokers": ["b"], "topics": _TOPICS},
    "Cache": {"store": "s"},
    "Caller": {"dependency": "d"},
    "CircuitBreaker": lambda node, **kw: nodes.CircuitBreaker(node.now, **kw),
    "Consumer": {"brokers": ["b"], "topics": _TOPICS, "group": "g", "topic": "t", "sink": "s"},
    "Edge": {"origin": "o"},
    "Gateway": {"routes": {"/": "svc"}, "services": {"svc": ["a"]}},
    "Instance": {"service": "svc", "registries": ["r"]},
    "LRU": lambda node, ttl=None: nodes.LRU(10, ttl, node.now),
    "LoadBalancer": {"backends": ["b1"]},
    "MultiPrimary": {},
    "Origin": {},
    "PrimaryReplica": {"read_from": "replica"},
    "Producer": lambda node, **kw: nodes.Producer(node, ["b"], _TOPICS, **kw),
    "Publisher": {"topic": "t", "brokers": ["b"], "topics": _TOPICS},
    "QuorumKV": {},
    "Registry": {},
    "Resolver": lambda node, **kw: nodes.Resolver(node, ["r"], **kw),
    "Service": {"service": "svc", "endpoints": {"/": []}},
    "ShardedKV": {},
}
_TIME = re.compile(r"timeout|interval|ttl|lease|window|deadline|every|retry|_time$|stale|anti_entropy$")
#: Names that match but are no seconds: counts, flags, a distribution.
_NOT_SECONDS = {
    "Canary.window",
    "MultiPrimary.dedup_window",
    "Broker.dedup_window",
    "Gateway.propagate_deadline",
    "Service.deadlines",
    "PrimaryReplica.lease_reads",
    "Resolver.stale_on_error",
}
#: Settings a class passes on to its base's constructor (``**failover``): not in its own signature.
_INHERITED = {"PrimaryReplica": ["heartbeat_interval", "election_timeout", "lease"]}


def _time_settings():
    for name in sorted(nodes.__all__):
        cls = getattr(nodes, name)
        if not inspect.isclass(cls):
            continue
        own = [p for p in inspect.signature(cls.__init__).parameters if _TIME.search(p)]
        for setting in own + _INHERITED.get(name, []):
            if f"{name}.{setting}" not in _NOT_SECONDS:
                yield name, setting


class _Host(em.Node):
    """A node for the helpers (a producer, a resolver ...) to belong to."""


def _build(name, **setting):
    """Build exported class ``name`` with ``setting``; the error it raises, or None."""
    how = _BUILD[name]  # a KeyError: a new class takes a time; say here how to build it
    sim = em.Simulation(seed=1)
    try:
        if callable(how):
            sim.add_node("h", _Host)
            how(sim.node("h"), **setting)
        else:
            sim.add_node("x", getattr(nodes, name), **how, **setting)
    except Exception as exc:  # the test looks at which
        return exc
    finally:
        sim.close()
    return None


def test_the_catalogue_of_times_is_complete():
    """Every exported class whose constructor takes a time is in _BUILD, and the ones the issue named are found."""
    found = set(_time_settings())
    assert {name for name, _ in found} <= set(_BUILD)
    assert {("Producer", "timeout"), ("Consumer", "poll_interval"), ("Resolver", "timeout"),
            ("Service", "call_timeout"), ("QuorumKV", "forward_timeout")} <= found  # fmt: skip


@pytest.mark.parametrize("name, setting", sorted(_time_settings()))
@pytest.mark.parametrize("value", [True, -1, math.nan, "1"])
def test_a_time_that_is_no_number_of_seconds_is_refused_at_construction(name, setting, value):
    """A bool, a negative number, NaN or a string for a timeout or interval is a ConfigError as the node or helper
    is built, naming the setting (Producer's timeout, Consumer's intervals, Resolver's and Announcer's timeout,
    Service's call_timeout, QuorumKV's forward_timeout waited for their first rpc or sleep); a bool's says what
    to pass instead where the setting is positive seconds."""
    default = _build(name)
    assert default is None, f"{name} cannot be built with its defaults: {default}"
    error = _build(name, **{setting: value})
    assert isinstance(error, em.ConfigError) and setting in str(error), f"{name}({setting}={value!r}): {error!r}"
    if value is True and "positive number of seconds" in str(error):
        assert "pass a number of seconds such as 1.0 (a bool is not one)" in str(error)
