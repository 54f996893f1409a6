"""Tests of emulator/check/explain.py: a verdict in words."""

from emulator.check.explain import explanation, summary_line
from emulator.check.linearizable import linearizable


def _stale(history):
    """write 1 acknowledged, then a read of nothing: the read cannot follow the write."""
    return history().op(1, "write", 1, key="k").op(2, "read", out=None, key="k").ops


def test_explanation_names_the_prefix_and_the_op_that_cannot_follow(history):
    """A failing verdict gives the longest prefix, the state after it, and the op that cannot follow."""
    text = linearizable(_stale(history), model="register").explain()
    assert text.splitlines()[0].startswith("NOT linearizable (model register, 2 ops, 1 key")
    assert 'key "k": 1 of 2 ops linearized' in text
    assert "state after it: 1" in text
    assert '1. p1 write("k", 1) -> ok [0..1]' in text
    assert 'p2 read("k") -> null [2..3]: it returned null but after the prefix the value was 1' in text


def test_explanation_lists_the_other_candidates_and_why_they_fail(history):
    """Ops that could come next instead are listed, each with its reason."""
    h = history().op(1, "write", 1).invoke(2, "read").invoke(3, "read").ok(2, 3).ok(3, 4).ops
    text = linearizable(h, model="register").explain()
    assert (
        "the op that must come next and cannot:\n          p2 read() -> 3 [2..4]: "
        "it returned 3 but after the prefix the value was 1" in text
    )
    assert (
        "could come next (all 1):\n          p3 read() -> 4 [3..5]: it returned 4 but after the prefix the value was 1"
        in text
    )


def test_unsplit_states_are_shown_per_key(history):
    """An unsplit check shows its state as a map of key to value."""
    h = history().op(1, "write", 1, key="a").op(1, "write", 2, key="b").op(2, "read", out=None, key="a").ops
    text = linearizable(h, model="register", partition=False).explain()
    assert "the whole history: 2 of 3 ops linearized" in text
    assert 'state after it: {"a": 1, "b": 2}' in text


def test_explanation_is_limited_to_a_few_keys(history):
    """Past the first few failing keys the explanation only names the rest."""
    h = history()
    for key in "abcde":
        h.op(1, "write", 1, key=key).op(2, "read", out=None, key=key)
    text = linearizable(h.ops, model="register", stop_early=False).explain(keys=2)
    assert text.count("ops linearized before") == 2
    assert '3 more keys are not linearizable: "c", "d", "e"' in text


def test_a_legal_candidate_is_explained_as_a_dead_end(history):
    """Explaining from a shorter prefix, an op that is legal there is called a dead end."""
    verdict = linearizable(_stale(history), model="register")
    part = verdict.partitions[0]
    part.order, part.state = [], None
    text = verdict.explain()
    assert 'p1 write("k", 1) -> ok [0..1]: legal here (value null -> 1), but nothing can follow it to the end' in text


def test_the_functions_are_what_the_verdict_methods_say(history):
    """summary_line and explanation give the text Verdict.summary and Verdict.explain return."""
    verdict = linearizable(_stale(history), model="register")
    assert summary_line(verdict) == verdict.summary()
    assert explanation(verdict, limit=1, keys=1) == verdict.explain(limit=1, keys=1) != explanation(verdict, limit=0)


def test_the_longest_prefix_counts_ops_that_had_to_happen_before_timed_out_ones(history):
    """Timed-out writes that may land anywhere do not make a prefix longer than one holding more acknowledged ops.

    The read of 0 cannot be linearized; before it, the read of nil and the acknowledged write of b both can.
    """
    h = history().invoke(0, "write", 1, key="a").info(0).op(2, "read", out=None, key="a")
    h.invoke(2, "write", 2, key="a").info(2).invoke(3, "write", 2, key="b").info(3)
    h.invoke(4, "write", 2, key="b").invoke(1, "read", key="a").ok(1, 0).ok(4)
    verdict = linearizable(h.ops, model="register", partition=False)
    (part,) = verdict.failures
    required = [p.op.f for p in part.prepared if p.required and p.op.id in part.order]
    assert sorted(required) == ["read", "write"]
    assert '. p4 write("b", 2) -> ok [8..11]' in verdict.explain()
