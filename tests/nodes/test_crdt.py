"""CRDTs: merges are a join (commutative, associative, idempotent), and each type matches its specification."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import crdt

REPLICAS = ["a", "b", "c"]
ELEMENTS = [0, 1, "x"]

# One step: (replica, op, argument); "merge" takes another replica's state.
steps = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["update", "update", "remove", "merge"]), st.integers(-3, 3)),
    max_size=40,
)


def run(kind: str, plan) -> list[dict]:
    """Play ``plan`` on three replicas; return their states."""
    empty = {"counter": crdt.counter, "set": crdt.orset, "register": crdt.register}[kind]
    states = [empty() for _ in REPLICAS]
    for i, op, arg in plan:
        name, state = REPLICAS[i], states[i]
        if op == "merge":
            states[i] = crdt.merge(state, states[(i + 1 + abs(arg)) % 3])
        elif kind == "counter":
            states[i] = crdt.counter_add(state, name, arg)
        elif kind == "set":
            element = ELEMENTS[abs(arg) % 3]
            states[i] = crdt.orset_add(state, name, element) if op == "update" else crdt.orset_remove(state, element)
        elif op == "update":
            states[i] = crdt.register_write(state, name, arg, None)
    return states


def live(m) -> list:
    """The tombstone model's value: every add (write) no replica it heard from removed (superseded)."""
    return sorted({repr(v) for d, v in m["adds"].items() if d not in m["gone"]})


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["counter", "set", "register"]), steps, steps)
def test_merge_is_commutative_associative_and_idempotent(kind, plan_a, plan_b):
    """Property: for reachable states x, y, z: x+y = y+x, (x+y)+z = x+(y+z), x+x = x."""
    xs = run(kind, plan_a)
    ys = run(kind, plan_b)
    x, y, z = xs[0], ys[1], crdt.merge(xs[2], ys[2])
    assert crdt.merge(x, y) == crdt.merge(y, x)
    assert crdt.merge(crdt.merge(x, y), z) == crdt.merge(x, crdt.merge(y, z))
    assert crdt.merge(x, x) == x


@settings(max_examples=150, deadline=None)
@given(steps)
def test_the_counter_counts_every_increment_and_decrement_once(plan):
    """Property: after all replicas merge, the counter is the sum of every delta, however updates were merged."""
    states = run("counter", plan)
    total = sum(arg for _, op, arg in plan if op != "merge")
    final = states[0]
    for state in states[1:]:
        final = crdt.merge(final, state)
    assert crdt.counter_value(final) == total


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["set", "register"]), steps)
def test_each_replica_matches_the_tombstone_specification(kind, plan):
    """Property: the optimised set and register hold exactly the adds (writes) no replica saw removed (superseded)."""
    states, model = _run_with_model(kind, plan)
    for state, m in zip(states, model):
        values = crdt.orset_value(state) if kind == "set" else crdt.register_values(state)
        assert sorted({repr(v) for v in values}) == live(m)
    merged, merged_model = states[0], {"adds": {}, "gone": set()}
    for state, m in zip(states, model):
        merged = crdt.merge(merged, state)
        merged_model["adds"].update(m["adds"])
        merged_model["gone"] |= m["gone"]
    values = crdt.orset_value(merged) if kind == "set" else crdt.register_values(merged)
    assert sorted({repr(v) for v in values}) == live(merged_model)


def _run_with_model(kind, plan):
    """``run``, beside the textbook specification: every add kept, removals as tombstones."""
    counter = itertools.count()
    states = [crdt.orset() if kind == "set" else crdt.register() for _ in REPLICAS]
    model = [{"adds": {}, "gone": set()} for _ in REPLICAS]
    for i, op, arg in plan:
        state, m = states[i], model[i]
        if op == "merge":
            j = (i + 1 + abs(arg)) % 3
            states[i] = crdt.merge(state, states[j])
            m["adds"].update(model[j]["adds"])
            m["gone"] |= model[j]["gone"]
        elif kind == "set":
            element = ELEMENTS[abs(arg) % 3]
            m["gone"] |= {d for d, e in m["adds"].items() if e == element}
            if op == "update":
                states[i] = crdt.orset_add(state, REPLICAS[i], element)
                m["adds"][next(counter)] = element
            else:
                states[i] = crdt.orset_remove(state, element)
        elif op == "update":
            states[i] = crdt.register_write(state, REPLICAS[i], arg, None)
            m["gone"] |= set(m["adds"])
            m["adds"][next(counter)] = arg
    return states, model


def test_an_add_concurrent_with_a_remove_wins():
    """Replica a removes x while b, not having seen a's remove, adds x again: after merging, x is present."""
    a = crdt.orset_add(crdt.orset(), "a", "x")
    b = crdt.merge(crdt.orset(), a)
    a = crdt.orset_remove(a, "x")
    b = crdt.orset_add(b, "b", "x")
    assert crdt.orset_value(crdt.merge(a, b)) == ["x"] == crdt.orset_value(crdt.merge(b, a))


def test_a_remove_after_seeing_the_add_removes_it_everywhere():
    """b saw a's add and removed it: the merge has no x."""
    a = crdt.orset_add(crdt.orset(), "a", "x")
    b = crdt.orset_remove(crdt.merge(crdt.orset(), a), "x")
    assert crdt.orset_value(crdt.merge(a, b)) == []


def test_two_writes_through_one_node_from_one_context_both_survive():
    """Dotted versions: two clients read the same context and write through the same node; both are siblings."""
    base = crdt.register_write(crdt.register(), "n1", "v0", None)
    context = dict(base["clock"])
    one = crdt.register_write(base, "n1", "left", context)
    two = crdt.register_write(one, "n1", "right", context)
    assert crdt.register_values(two) == ["left", "right"]
    later = crdt.register_write(two, "n1", "merged", dict(two["clock"]))
    assert crdt.register_values(later) == ["merged"]


def test_merging_different_types_is_an_error():
    """A counter and a set do not merge."""
    with pytest.raises(ValueError, match="cannot merge a counter with a set"):
        crdt.merge(crdt.counter(), crdt.orset())


# One register step: (replica, op, other replica); "read-write" writes at replica with the clock read at the other.
register_steps = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["write", "read-write", "merge"]), st.integers(0, 2)), max_size=40
)


def _registers_with_contexts(plan):
    """Three registers and the tombstone model; a write may carry the context of a read at another replica."""
    states = [crdt.register() for _ in REPLICAS]
    model = [{"adds": {}, "gone": set()} for _ in REPLICAS]
    for n, (i, op, j) in enumerate(plan):
        if op == "merge":
            states[i] = crdt.merge(states[i], states[j])
            model[i]["adds"].update(model[j]["adds"])
            model[i]["gone"] |= model[j]["gone"]
            continue
        # A write supersedes what its context covers: everything the replica read from had seen.
        read = j if op == "read-write" else i
        context = dict(states[read]["clock"]) if op == "read-write" else None
        superseded = set(model[read]["adds"]) | model[read]["gone"]
        states[i] = crdt.register_write(states[i], REPLICAS[i], n, context)
        model[i]["gone"] |= superseded
        model[i]["adds"][n] = n
    return states, model


@settings(max_examples=200, deadline=None)
@given(register_steps, register_steps)
def test_registers_written_with_other_replicas_contexts_still_merge_as_a_join_and_match_the_specification(a, b):
    """Property (Shapiro's SEC for the multi-value register): with writes carrying a context read at another
    replica, every replica holds exactly the writes no write it heard of superseded; merging all gives the same
    state in any order and grouping, and the union of the specifications."""
    for plan in (a, b):
        states, model = _registers_with_contexts(plan)
        for state, m in zip(states, model):
            assert sorted({repr(v) for v in crdt.register_values(state)}) == live(m)
    xs, _ = _registers_with_contexts(a)
    ys, _ = _registers_with_contexts(b)
    x, y, z = xs[0], ys[1], crdt.merge(xs[2], ys[2])
    assert crdt.merge(x, y) == crdt.merge(y, x) and crdt.merge(x, x) == x
    assert crdt.merge(crdt.merge(x, y), z) == crdt.merge(x, crdt.merge(y, z))
    states, model = _registers_with_contexts(a)
    spec: dict = {"adds": {}, "gone": set()}
    for m in model:
        spec["adds"].update(m["adds"])
        spec["gone"] |= m["gone"]
    for order in ([0, 1, 2], [2, 0, 1]):
        merged = crdt.register()
        for k in order:
            merged = crdt.merge(merged, states[k])
        assert sorted({repr(v) for v in crdt.register_values(merged)}) == live(spec)
