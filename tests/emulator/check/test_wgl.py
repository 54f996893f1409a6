"""Tests of emulator/check/wgl.py: the search itself, on hand-made op lists."""

import math
import time

from emulator.check.models import ILLEGAL
from emulator.check.wgl import Search, search


def write(v):
    return lambda s: v


def read(v):
    return lambda s: s if s == v else ILLEGAL


def may_swap(frm, to):
    return lambda s: to if s == frm else s


def test_no_required_ops_is_trivially_linearizable():
    """With nothing that must be linearized, the answer is yes at once."""
    result = search([0], [math.inf], [write(1)], [False], None)
    assert result.valid is True and result.order == []


def test_sequential_ops_linearize_in_order():
    """Ops that do not overlap linearize in real-time order; the order is returned."""
    result = search([0, 2, 4], [1, 3, 5], [write(1), read(1), write(2)], [True] * 3, None)
    assert result.valid is True and result.order == [0, 1, 2] and result.state == 2


def test_a_read_of_an_overwritten_value_is_not_linearizable():
    """A read that starts after a write finished cannot see the older value."""
    result = search([0, 2], [1, 3], [write(1), read(None)], [True, True], None)
    assert result.valid is False
    assert result.order == [0] and result.state == 1  # the longest prefix, and the state after it


def test_concurrent_ops_may_be_reordered():
    """A read overlapping a write may be linearized before it."""
    result = search([0, 1], [3, 2], [write(1), read(None)], [True, True], None)
    assert result.valid is True and result.order == [1, 0]


def test_backtracking_finds_the_one_order_that_works():
    """Three overlapping writes and a later read of the first: the search must put it last."""
    calls, rets = [0, 1, 2, 10], [5, 6, 7, 11]
    steps = [write("a"), write("b"), write("c"), read("a")]
    result = search(calls, rets, steps, [True] * 4, None)
    assert result.valid is True and result.order[-2:] == [0, 3]


def test_an_optional_op_may_be_left_out():
    """An op that is not required need not appear in the linearization."""
    result = search([0, 1, 3], [2, math.inf, 4], [write(1), write(2), read(1)], [True, False, True], None)
    assert result.valid is True and 1 not in result.order


def test_an_optional_op_may_take_effect_late():
    """An op with return at infinity can be linearized after later ops."""
    calls, rets = [0, 1, 3, 5], [2, math.inf, 4, 6]
    steps = [write(1), write(2), read(1), read(2)]
    result = search(calls, rets, steps, [True, False, True, True], None)
    assert result.valid is True and result.order == [0, 2, 1, 3]


def test_a_passed_deadline_answers_unknown():
    """A search that runs past its deadline gives up with valid None."""
    n = 14
    calls, rets = list(range(n)) + [100], [50 + i for i in range(n)] + [101]
    steps = [write(i) for i in range(n)] + [read("never written")]
    started = time.monotonic()
    result = search(calls, rets, steps, [True] * (n + 1), None, deadline=time.monotonic())
    assert result.valid is None and time.monotonic() - started < 2.0


def _pending_then(k, steps_after, calls_after, rets_after):
    """k optional writes pending from the start, then the given required ops."""
    calls = list(range(k)) + calls_after
    rets = [math.inf] * k + rets_after
    required = [False] * k + [True] * len(steps_after)
    return calls, rets, required


def test_pending_optional_writes_do_not_multiply_a_dead_end():
    """With 12 indeterminate writes pending, refuting a bad read stays small (not 2**12 subsets)."""
    steps = [write(i) for i in range(12)] + [write("a"), write("b"), read("never")]
    calls, rets, required = _pending_then(12, steps[12:], [100, 101, 110], [105, 106, 111])
    result = search(calls, rets, steps, required, None, blind=[True] * 14 + [False])
    assert result.valid is False and result.explored <= 100


def test_optional_ops_that_change_nothing_seen_are_dominated():
    """Optional cas ops that may or may not swap are pruned by the subsumption cache."""
    steps = [may_swap(i, i + 1) for i in range(12)] + [write(0), write("b"), read("never")]
    calls, rets, required = _pending_then(12, steps[12:], [100, 101, 110], [105, 106, 111])
    result = search(calls, rets, steps, required, None)
    assert result.valid is False and result.explored <= 200


def test_required_ops_are_tried_before_optional_ones():
    """A valid history after many pending optional writes is found without trying them."""
    steps = [write(i) for i in range(12)]
    steps += [write(f"w{i // 2}") if i % 2 == 0 else read(f"w{i // 2}") for i in range(40)]
    calls, rets, required = _pending_then(
        12, steps[12:], [100 + 2 * i for i in range(40)], [101 + 2 * i for i in range(40)]
    )
    result = search(calls, rets, steps, required, None)
    assert result.valid is True and result.explored == 40 and len(result.order) == 40


def test_timeouts_pending_since_the_start_are_not_tried_until_an_op_needs_them():
    """200 indeterminate writes from the start, then 400 sequential ops that never need them: one try per op."""
    k, n = 200, 400
    steps = [write(("lost", i)) for i in range(k)] + [write(i // 2) if i % 2 == 0 else read(i // 2) for i in range(n)]
    calls, rets, required = _pending_then(
        k, steps[k:], [1000 + 2 * i for i in range(n)], [1001 + 2 * i for i in range(n)]
    )
    run = Search(calls, rets, steps, required, None)
    result = run.run(10**6)
    assert result.valid is True and result.explored == n and len(result.order) == n


def test_a_pending_timeout_is_taken_where_a_read_needs_it():
    """An indeterminate write from the start is linearized just before the read that sees its value, late."""
    k, n = 50, 40
    steps = [write(("lost", i)) for i in range(k)] + [write(i) for i in range(n)] + [read(("lost", 7))]
    calls = list(range(k)) + [1000 + 2 * i for i in range(n)] + [2000]
    rets = [math.inf] * k + [1001 + 2 * i for i in range(n)] + [2001]
    result = search(calls, rets, steps, [False] * k + [True] * (n + 1), None)
    assert result.valid is True and result.order[-2:] == [7, k + n]
