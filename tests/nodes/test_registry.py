"""The registry of protocol names: every catalogue protocol is named, resolves, and is usable from a scenario."""

import pytest

import nodes
from faults import Cluster
from nodes.registry import PROTOCOLS, resolve

CATALOGUE = {
    "multi-primary": {"resolution": "crdt"},
    "broker": {"brokers": ["n0"], "topics": {"t": 2}},
    "publisher": {"topic": "t", "brokers": ["n0"], "topics": {"t": 2}},
    "consumer": {"brokers": ["n0"], "topics": {"t": 2}, "group": "g", "topic": "t", "sink": "n1"},
    "sink": {"idempotent": True},
    "gateway": {"routes": {"/a": "a"}, "services": {"a": ["n1"]}},
    "registry": {"mode": "cp"},
    "instance": {"service": "a", "registries": ["n0"]},
    "edge": {"origin": "n0"},
    "origin": {"update_interval": 2.0},
    "service": {"service": "a", "endpoints": {"/a": []}},
}


@pytest.mark.parametrize("name, config", sorted(CATALOGUE.items()))
def test_each_catalogue_protocol_is_named_and_builds_from_a_scenario_cluster(name, config):
    """The name resolves to a class nodes exports, and a scenario Cluster with that config builds it."""
    cls = resolve(name)
    assert name in PROTOCOLS and getattr(nodes, cls.__name__) is cls
    sim = Cluster(name, nodes=2, config=config).build(seed=1)
    assert all(isinstance(sim.node(n), cls) for n in ("n0", "n1"))


def test_a_scenario_cluster_refuses_settings_the_protocol_does_not_take():
    """A wrong setting names the ones the constructor takes."""
    with pytest.raises(ValueError, match="keyword arguments Gateway takes: routes"):
        Cluster("gateway", config={"route": {}}).node_class()
