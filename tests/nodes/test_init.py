"""Tests of nodes/__init__.py: every protocol's names are there, and a protocol's module is imported on first use."""

import importlib

import pytest

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
