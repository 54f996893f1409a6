"""Versions: LWW keeps the greatest stamp; vector clocks keep every version nothing descends from."""

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.versions import descends, digest, merge_clocks, new_version, pick, reconcile, stamp_of

NODES = ["x", "y", "z"]
CLOCKS = st.dictionaries(st.sampled_from(NODES), st.integers(1, 3), max_size=3)


def _version(clock: dict) -> dict:
    # One version per distinct clock, as the store guarantees (a coordinator never reuses a counter).
    text = ",".join(f"{k}{v}" for k, v in sorted(clock.items()))
    return {"value": text, "stamp": [sum(clock.values()), text, 0], "clock": dict(sorted(clock.items()))}


SIBLINGS = st.lists(CLOCKS.map(_version), max_size=5)


def _as_set(siblings):
    return sorted(v["value"] for v in siblings)


@settings(max_examples=100)
@given(SIBLINGS, SIBLINGS, SIBLINGS)
def test_vector_reconcile_is_commutative_associative_and_idempotent(a, b, c):
    """Property: merging replicas in any order, any grouping, any number of times gives the same siblings."""
    assert reconcile("vector", a, b) == reconcile("vector", b, a)
    assert reconcile("vector", reconcile("vector", a, b), c) == reconcile("vector", a, reconcile("vector", b, c))
    once = reconcile("vector", a)
    assert reconcile("vector", once, once) == once


@settings(max_examples=100)
@given(SIBLINGS)
def test_vector_reconcile_keeps_exactly_the_versions_nothing_else_descends_from(versions):
    """Property: the result is the maximal clocks of the input, each once, sorted by stamp."""
    kept = reconcile("vector", versions)
    maximal = {v["value"] for v in versions
               if not any(descends(o["clock"], v["clock"]) and o["clock"] != v["clock"] for o in versions)}
    assert {v["value"] for v in kept} == maximal
    assert len(kept) == len(maximal)
    assert [stamp_of(v) for v in kept] == sorted(stamp_of(v) for v in kept)


@given(SIBLINGS.filter(bool))
def test_lww_reconcile_keeps_the_single_greatest_stamp(versions):
    """Property: LWW keeps one version, the one pick() would choose."""
    assert reconcile("lww", versions) == [pick(versions)]


@given(SIBLINGS, st.sampled_from(NODES), st.integers(1, 100))
def test_a_new_vector_version_supersedes_its_context(siblings, node, seq):
    """Property: a version written from the merged clock of some siblings replaces all of them."""
    context = merge_clocks(siblings)
    seq = max(seq, context.get(node, 0) + 1)
    version = new_version("vector", "new", node, 1.0, seq, context)
    assert all(descends(version["clock"], s["clock"]) for s in siblings)
    assert reconcile("vector", siblings, [version]) == [version]


def test_a_write_concurrent_with_another_is_kept_beside_it():
    """Two writes from the same context on different coordinators become two siblings."""
    base = new_version("vector", "a", "x", 1.0, 1)
    left = new_version("vector", "b", "x", 2.0, 2, base["clock"])
    right = new_version("vector", "c", "y", 3.0, 1, base["clock"])
    assert _as_set(reconcile("vector", [base], [left], [right])) == ["b", "c"]


def test_lww_new_versions_carry_no_clock_and_order_by_time_then_node():
    """An LWW version is value + stamp; equal times are ordered by node name, then counter."""
    early, late = new_version("lww", 1, "b", 5.0, 1), new_version("lww", 2, "a", 5.0, 9)
    assert "clock" not in early
    assert pick([early, late]) is early


def test_digests_are_equal_exactly_for_equal_sibling_lists():
    """Equal lists share a digest; a changed value changes it."""
    a = [new_version("vector", "v", "x", 1.0, 1)]
    b = [new_version("vector", "v", "x", 1.0, 1)]
    c = [new_version("vector", "w", "x", 1.0, 1)]
    assert digest(a) == digest(b) != digest(c)
