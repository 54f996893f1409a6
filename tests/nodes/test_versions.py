"""Versions: LWW keeps the greatest stamp; dotted version vectors keep every version no writer saw."""

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.versions import descends, digest, merge_clocks, new_version, pick, reconcile, saw, stamp_of

NODES = ["x", "y", "z"]
CLOCKS = st.dictionaries(st.sampled_from(NODES), st.integers(1, 3), max_size=3)


@st.composite
def histories(draw) -> list[dict]:
    """Every write that exists, made as a store makes them: each from the merged clock of some earlier writes.

    A reader who sees a write also sees its coordinator's earlier versions (nodes.quorum: a coordinator
    sends its own siblings with each new version, so no replica holds one without the others). Without
    that, a context could claim a dot whose version, and all that version saw, its reader never saw.
    """
    writes: list[dict] = []
    for i in range(draw(st.integers(1, 6))):
        node = draw(st.sampled_from(NODES))
        chosen = draw(st.lists(st.sampled_from(writes), max_size=3)) if writes else []
        seen = [w for w in writes if any(_same_node_no_later(w, c) for c in chosen)]
        context = merge_clocks(seen)
        seq = max([w["stamp"][2] for w in writes if w["stamp"][1] == node] + [context.get(node, 0)]) + 1
        writes.append(new_version("vector", f"{node}{seq}", node, float(i), seq, context))
    return writes


def _same_node_no_later(write: dict, chosen: dict) -> bool:
    return write["stamp"][1] == chosen["stamp"][1] and write["stamp"][2] <= chosen["stamp"][2]


WRITES = histories()


@st.composite
def replicas(draw, count: int = 3):
    writes = draw(WRITES)
    return [draw(st.lists(st.sampled_from(writes), max_size=5)) for _ in range(count)]


SIBLINGS = WRITES


def _as_set(siblings):
    return sorted(v["value"] for v in siblings)


@settings(max_examples=100)
@given(replicas())
def test_vector_reconcile_is_commutative_associative_and_idempotent(held):
    """Property: merging replicas in any order, any grouping, any number of times gives the same siblings."""
    a, b, c = held
    assert reconcile("vector", a, b) == reconcile("vector", b, a)
    assert reconcile("vector", reconcile("vector", a, b), c) == reconcile("vector", a, reconcile("vector", b, c))
    once = reconcile("vector", a)
    assert reconcile("vector", once, once) == once


@settings(max_examples=100)
@given(replicas(1))
def test_vector_reconcile_keeps_exactly_the_versions_no_writer_saw(held):
    """Property: the result is every version whose dot no other version's context covers, each once, by stamp."""
    versions = held[0]
    kept = reconcile("vector", versions)
    unseen = {v["value"] for v in versions if not any(saw(o, v) for o in versions if o["stamp"] != v["stamp"])}
    assert {v["value"] for v in kept} == unseen
    assert len(kept) == len(unseen)
    assert [stamp_of(v) for v in kept] == sorted(stamp_of(v) for v in kept)


@given(CLOCKS, st.sampled_from(NODES))
def test_two_writes_from_one_context_through_one_coordinator_are_both_kept(context, node):
    """The per-server clock bug: the second write's counter is higher, but its writer never saw the first."""
    first = new_version("vector", "a", node, 1.0, context.get(node, 0) + 1, context)
    second = new_version("vector", "b", node, 2.0, context.get(node, 0) + 2, context)
    assert descends(second["clock"], first["clock"])  # what a clock per server alone would have dropped
    assert _as_set(reconcile("vector", [first], [second])) == ["a", "b"]


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
