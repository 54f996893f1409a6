"""Tests of capsim/demos/partition.py: the printed account tells the AP story."""

import io

from rich.console import Console

from capsim.demos import partition


def run_demo(seed=1) -> str:
    buffer = io.StringIO()
    assert partition.main(seed=seed, console=Console(file=buffer, width=120)) == 0
    return buffer.getvalue()


def test_each_side_stays_available_and_disagrees_then_converges():
    """During the partition each client reads its own side's write; after the heal they agree."""
    sim, clients = partition.build(seed=1)
    sim.run(partition.scenario(sim, clients))
    during, after = partition._reads(sim, "partitioned"), partition._reads(sim, "healed")
    assert during == {"alice": "v2-alice", "bob": "v2-bob"}
    assert after["alice"] == after["bob"] in ("v2-alice", "v2-bob")
    assert all(op["type"] != "fail" for op in sim.history)


def test_the_account_names_every_client_and_the_verdicts():
    """The printed account has a row per operation and the AP summary lines."""
    text = run_demo()
    assert text.count("alice") >= 4 and text.count("bob") >= 4
    assert "both sides stayed available, and disagreed (AP)" in text
    assert "converged" in text and "did NOT converge" not in text


def test_the_same_seed_prints_the_same_account():
    """The demo is deterministic: one seed, one account, one digest."""
    assert run_demo(5) == run_demo(5)
