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


@pytest.mark.parametrize(
    "source, words",
    [
        ("def broken(:\n", "importing module 'failing_module' raised SyntaxError: invalid syntax"),
        ("x = 1\nraise RuntimeError('boom at import')\n", "raised RuntimeError: boom at import"),
    ],
)
def test_a_module_that_fails_as_it_imports_is_a_value_error_saying_where(tmp_path, monkeypatch, source, words):
    """Not only an ImportError: a syntax error, or an exception the module raises, is a ValueError naming the
    module's file and line (the command line shows it in one line; it showed a 60-line traceback)."""
    (tmp_path / "failing_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError) as caught:
        resolve("failing_module:Node")
    line = 1 if "Syntax" in words else 2
    assert words in str(caught.value) and f"failing_module.py, line {line})" in str(caught.value)
