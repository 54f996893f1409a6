"""Anti-entropy: Merkle and digest exchanges make two replicas equal and ship only what differs."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from nodes.antientropy import DEPTH, MerkleTree, diff_digests
from nodes.quorum import QuorumKV
from nodes.versions import new_version, reconcile

KEYS = [f"k{i}" for i in range(40)] + [7, 8]
STORES = st.dictionaries(st.sampled_from(KEYS), st.integers(0, 3), max_size=len(KEYS))


def _pair(a: dict, b: dict):
    """Two replicas n0, n1 (N=2) preloaded with LWW versions: value v as written at time v by "w"."""
    sim = em.Simulation(seed=1)
    for name, data in (("n0", a), ("n1", b)):
        node = sim.add_node(name, QuorumKV, n=2, r=1, w=1)
        node.storage["data"] = {k: [new_version("lww", v, "w", float(v), 1)] for k, v in data.items()}
    sim.run(until=0.01)
    return sim


@settings(max_examples=60, deadline=None)
@given(STORES, STORES, st.sampled_from(["merkle", "digest"]))
def test_one_round_leaves_both_replicas_with_the_merge_of_both(a, b, mode):
    """Property: after one round from n0, n0 and n1 both hold reconcile(n0's, n1's) for every key."""
    sim = _pair(a, b)
    before = {n: dict(sim.node(n).storage["data"]) for n in ("n0", "n1")}
    sent = sim.run(sim.node("n0").anti_entropy_round("n1", mode))
    for key in set(before["n0"]) | set(before["n1"]):
        expected = reconcile("lww", before["n0"].get(key, []), before["n1"].get(key, []))
        assert sim.node("n0").storage["data"][key] == sim.node("n1").storage["data"][key] == expected
    assert sent <= len(a)


@pytest.mark.parametrize("mode", ["merkle", "digest"])
def test_replicas_in_sync_exchange_no_versions(mode):
    """Equal replicas: the Merkle round stops at the root, the digest round pushes nothing."""
    data = {k: i for i, k in enumerate(KEYS)}
    sim = _pair(data, data)
    assert sim.run(sim.node("n0").anti_entropy_round("n1", mode)) == 0
    assert sim.node("n1").stats["ae_keys_sent"] == 0


def test_a_merkle_round_ships_only_the_leaves_that_differ():
    """One key of 42 differs: the versions sent are those of its leaf, not all 42."""
    data = {k: 1 for k in KEYS}
    sim = _pair(data, {**data, "k5": 2})
    sent = sim.run(sim.node("n0").anti_entropy_round("n1", "merkle"))
    tree = MerkleTree({k: "" for k in KEYS})
    leaf = next(i for i, keys in enumerate(tree.keys) if "k5" in keys)
    assert sent == len(tree.keys[leaf]) < len(KEYS) // 4
    assert sim.node("n0").storage["data"]["k5"][0]["value"] == 2


def test_merkle_roots_are_equal_exactly_when_the_digests_are():
    """Same digests, same root (any insertion order); one digest changed, another root; empty is ''."""
    digests = {k: str(i) for i, k in enumerate(KEYS)}
    assert MerkleTree(digests).root == MerkleTree(dict(reversed(list(digests.items())))).root
    assert MerkleTree(digests).root != MerkleTree({**digests, "k3": "x"}).root
    assert MerkleTree({}).root == ""


def test_diff_digests_sends_what_differs_and_asks_for_what_it_lacks():
    """Keys differing or missing on the other side are sent; keys only the other side has are wanted."""
    send, want = diff_digests({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "x", "d": "4"})
    assert (send, want) == (["b", "c"], ["d"])


class _Counting(QuorumKV):
    """A QuorumKV that counts the anti-entropy requests it answers, by type."""

    def __init__(self, **config):
        super().__init__(**config)
        self.asked: dict = {}

    async def handle_ae_hashes(self, msg):
        self.asked["ae_hashes"] = self.asked.get("ae_hashes", 0) + 1
        return await super().handle_ae_hashes(msg)

    async def handle_ae_sync(self, msg):
        self.asked["ae_sync"] = self.asked.get("ae_sync", 0) + 1
        return await super().handle_ae_sync(msg)


@settings(max_examples=60, deadline=None)
@given(STORES, STORES)
def test_a_merkle_round_takes_one_round_trip_in_sync_and_at_most_depth_plus_two_otherwise(a, b):
    """Property: equal replicas exchange one root hash; otherwise at most DEPTH + 1 hash round trips, then one sync,
    which ships only keys of the leaves whose hashes differ."""
    sim = em.Simulation(seed=1)
    for name, data in (("n0", a), ("n1", b)):
        node = sim.add_node(name, _Counting, n=2, r=1, w=1)
        node.storage["data"] = {k: [new_version("lww", v, "w", float(v), 1)] for k, v in data.items()}
    sim.run(until=0.01)
    sent = sim.run(sim.node("n0").anti_entropy_round("n1", "merkle"))
    asked = sim.node("n1").asked
    if a == b:
        assert asked == {"ae_hashes": 1} and sent == 0
    else:
        assert 1 <= asked["ae_hashes"] <= DEPTH + 1 and asked.get("ae_sync", 0) == 1
        differing = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
        tree = MerkleTree({k: "" for k in KEYS})
        leaves = {i for i, keys in enumerate(tree.keys) if differing & set(keys)}
        assert sent <= sum(1 for k in a if any(k in tree.keys[i] for i in leaves))
