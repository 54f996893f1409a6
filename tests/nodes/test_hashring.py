"""Consistent hashing: balance, minimal movement, preference lists, weights."""

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.hashring import HashRing

KEYS = [f"key-{i}" for i in range(100_000)]


def test_load_is_balanced_within_fifteen_percent_at_128_vnodes():
    """10 nodes, 128 virtual nodes each, 100,000 keys: max/mean load <= 1.15."""
    ring = HashRing([f"n{i}" for i in range(10)], vnodes=128)
    loads = ring.loads(KEYS)
    mean = len(KEYS) / 10
    assert max(loads.values()) / mean <= 1.15, loads


@pytest.mark.slow
def test_the_busiest_node_over_many_sets_of_names_is_as_the_docstring_says():
    """40 sets of 10 names at 128 vnodes: the busiest node's excess has a median near 14%, and none reaches 30%.

    "Up to about 15%" held for n0..n9 only: over 200 sets a review found a median of 14%, 38% of sets above 15%
    and a worst of 28%.
    """
    excess = sorted(
        max(HashRing([f"node-{t}-{i}" for i in range(10)], vnodes=128).loads(KEYS).values()) / 10_000 - 1
        for t in range(40)
    )
    assert 0.10 <= statistics.median(excess) <= 0.18 and excess[-1] < 0.30, excess


def test_adding_an_eleventh_node_moves_about_one_eleventh_of_the_keys():
    """Adding n10 moves a fraction of keys within 20% of the ideal 1/11, all of them to n10."""
    ring = HashRing([f"n{i}" for i in range(10)], vnodes=128)
    before = {k: ring.lookup(k) for k in KEYS}
    ring.add("n10")
    moved = [k for k in KEYS if ring.lookup(k) != before[k]]
    assert abs(len(moved) / len(KEYS) - 1 / 11) <= 0.2 * (1 / 11)
    assert {ring.lookup(k) for k in moved} == {"n10"}


def test_removing_a_node_moves_only_its_keys():
    """Removing n3 reassigns exactly the keys n3 owned."""
    ring = HashRing([f"n{i}" for i in range(5)])
    before = {k: ring.lookup(k) for k in KEYS[:20_000]}
    ring.remove("n3")
    for key, owner in before.items():
        assert (ring.lookup(key) == owner) == (owner != "n3")


def test_weights_scale_the_share_of_keys():
    """A node of weight 2 owns about twice the keys of a node of weight 1."""
    ring = HashRing(["a", "b"], weights={"a": 2, "b": 1})
    loads = ring.loads(KEYS[:30_000])
    assert 1.7 < loads["a"] / loads["b"] < 2.3


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=8, unique=True), st.text(), st.integers(1, 10))
def test_a_preference_list_is_distinct_nodes_starting_at_the_owner(nodes, key, n):
    """Property: preference_list(key, n) starts with lookup(key) and holds min(n, N) distinct nodes."""
    ring = HashRing(nodes, vnodes=16)
    prefs = ring.preference_list(key, n)
    assert prefs[0] == ring.lookup(key)
    assert len(prefs) == len(set(prefs)) == min(n, len(nodes))


def test_the_ring_is_the_same_in_every_build():
    """Two rings built from the same members in another order place every key alike."""
    a = HashRing(["x", "y", "z"])
    b = HashRing(["z", "x", "y"])
    assert all(a.lookup(k) == b.lookup(k) for k in KEYS[:5000])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.add("a"), "already on the ring"),
        (lambda r: r.remove("zz"), "not on the ring"),
        (lambda r: r.add("c", weight=0), "positive number"),
        (lambda r: HashRing(vnodes=0), "positive int"),
        (lambda r: HashRing(vnodes=True), "positive int"),
        (lambda r: HashRing(vnodes=2.0), "positive int"),
        (lambda r: HashRing().lookup("k"), "ring is empty"),
    ],
)
def test_misuse_is_explained(call, message):
    """Duplicate or missing members, bad weights and an empty ring fail with a reason."""
    ring = HashRing(["a", "b"])
    with pytest.raises((ValueError, LookupError), match=message):
        call(ring)


@pytest.mark.parametrize("vnodes", [32, 128, 512])
@pytest.mark.parametrize("nodes", [10, 20, 50])
def test_a_nodes_share_varies_by_about_one_over_the_root_of_its_vnodes(vnodes, nodes):
    """The spread of the load (standard deviation over the mean) is within a factor 2 of 1/sqrt(vnodes)."""
    ring = HashRing([f"n{i}" for i in range(nodes)], vnodes=vnodes)
    loads = list(ring.loads(KEYS).values())
    spread = statistics.pstdev(loads) / statistics.fmean(loads)
    assert 0.5 <= spread * vnodes**0.5 <= 2.0, (spread, loads)
