"""Tests of emulator/check/verdict.py: the verdict and its methods."""

import json

from emulator.check.linearizable import linearizable
from emulator.check.timeline import render_html


def _stale(history):
    """write 1 acknowledged, then a read of nothing: the read cannot follow the write."""
    return history().op(1, "write", 1, key="k").op(2, "read", out=None, key="k").ops


def test_a_valid_verdict_explains_in_one_line(history):
    """A linearizable history's explanation is its summary line."""
    verdict = linearizable(history().op(1, "write", 1).op(2, "read", out=1).ops, model="register")
    assert str(verdict) == verdict.summary() and verdict.summary().startswith("linearizable")
    assert repr(verdict) == "<Verdict valid=True model=register partitions=1>"


def test_to_dict_is_json_serializable(history):
    """to_dict gives plain data, explanation included."""
    data = linearizable(_stale(history), model="register").to_dict()
    again = json.loads(json.dumps(data))
    assert again["valid"] is False and again["partitions"][0]["key"] == "k"
    assert again["partitions"][0]["linearized"] == 1 and "cannot" in again["explanation"]


def test_html_is_the_timeline_page(history):
    """Verdict.html() is emulator.check.timeline's page for it."""
    verdict = linearizable(_stale(history), model="register")
    assert verdict.html() == render_html(verdict) and verdict.summary() in verdict.html()
