"""Node.peers: a shared read-only view that behaves as the sorted list of the other servers."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from emulator.message import copy_value
from emulator.peers import Peers

_SERVERS = st.lists(st.text(min_size=1, max_size=4), max_size=12, unique=True).map(lambda s: tuple(sorted(s)))


@given(_SERVERS, st.text(min_size=1, max_size=4), st.integers(min_value=-15, max_value=15), st.integers(0, 2**32))
def test_peers_behave_as_the_list_of_the_other_servers(servers, name, i, seed):
    """Property: len, indexing, slicing, iteration, in, index, ==, repr and rng.choice match the list."""
    peers = Peers(servers, name)
    expected = [s for s in servers if s != name]
    assert len(peers) == len(expected) and list(peers) == expected and peers == expected and expected == peers
    assert peers == tuple(expected) and repr(peers) == repr(expected)
    assert peers[i:] == expected[i:] and peers[::-2] == expected[::-2]
    if -len(expected) <= i < len(expected):
        assert peers[i] == expected[i]
    else:
        with pytest.raises(IndexError):
            peers[i]
    for candidate in (*servers, name, "zz", 3):
        assert (candidate in peers) == (candidate in expected)
        if candidate in expected:
            assert peers.index(candidate) == expected.index(candidate)
    if expected:
        assert random.Random(seed).choice(peers) == random.Random(seed).choice(expected)
    assert copy_value({"peers": peers}) == {"peers": expected} and peers + ["x"] == expected + ["x"]


def test_every_node_shares_one_list_of_servers():
    """A thousand nodes share one tuple of names: peers cost no memory per node beyond the view."""
    sim = em.Simulation(seed=1)
    for i in range(1000):
        sim.add_node(f"n{i:04d}", em.Node)
    views = [sim.node(f"n{i:04d}").peers for i in range(1000)]
    assert all(v.servers is views[0].servers for v in views)
    assert views[5] == [f"n{i:04d}" for i in range(1000) if i != 5]


def test_peers_follow_nodes_added_later():
    """A node's peers include a server added after it started, and never a client."""
    sim = em.Simulation(seed=1)
    first = sim.add_node("n1", em.Node)
    sim.add_client("c0")
    assert first.peers == []
    sim.add_node("n0", em.Node)
    assert first.peers == ["n0"] and "c0" not in first.peers
