"""Tests of capsim/demos/partition.py: the printed account tells the AP story."""

import io

from hypothesis import example, given, settings
from hypothesis import strategies as st
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
    flat = " ".join(text.split())
    assert "both sides stayed available (4 of 4 operations ok), and disagreed (AP)" in flat
    assert "1 stale read(s) (alice read 'v2-alice' after 'v2-bob' was acknowledged to bob)" in flat
    assert "0 of 3 acknowledged writes lost" in flat and "NOT linearizable" in flat
    assert "converged" in text and "did NOT converge" not in text


def test_the_same_seed_prints_the_same_account():
    """The demo is deterministic: one seed, one account, one digest."""
    assert run_demo(5) == run_demo(5)


def _pairs(history: list[dict]) -> list[tuple[dict, dict | None]]:
    """(invoke, completion or None) of each client op, paired by process here rather than by the History; each op
    gets its position in the history as ``at`` (the checkers order ops by it, not by time, which ties)."""
    open_ops: dict = {}
    pairs: list[list] = []
    for at, op in enumerate(history):
        op = {**op, "at": at}
        if op["process"] == "nemesis":
            continue
        if op["type"] == "invoke":
            open_ops[op["process"]] = len(pairs)
            pairs.append([op, None])
        else:
            pairs[open_ops.pop(op["process"])][1] = op
    return [(invoke, done) for invoke, done in pairs]


def _end(done: dict) -> float:
    """When an op is known to have finished taking effect: its ok's time; never for an info."""
    return done["at"] if done["type"] == "ok" else float("inf")


def _facts(history: list[dict]) -> dict:
    """What the demo's history shows, recomputed from the raw ops (its ops run one after another)."""
    times = {op["f"]: op["time"] for op in history if op["process"] == "nemesis"}
    heal = next(at for at, op in enumerate(history) if op["process"] == "nemesis" and op["f"] == "heal")
    pairs = _pairs(history)
    ok = [(i, d) for i, d in pairs if d is not None and d["type"] == "ok"]
    cut = [d for i, d in pairs if times["partition"] <= i["time"] < times["heal"]]
    reads = {
        phase: {i["client"]: d["value"] for i, d in ok if i["f"] == "read" and lo <= i["time"] < hi}
        for phase, (lo, hi) in {"during": (times["partition"], times["heal"]), "after": (times["heal"], 1e9)}.items()
    }
    writes = [(i, d) for i, d in pairs if i["f"] == "write"]
    acked = [(i, d) for i, d in writes if d is not None and d["type"] == "ok"]
    stale = 0
    for read, done in ok:
        if read["f"] != "read":
            continue
        before = [(i, d) for i, d in acked if d["at"] < read["at"]]
        if not before or before[-1][0]["value"] == done["value"]:
            continue
        # v may still be current after the latest acknowledged write W if a write of v had not completed when W was
        # invoked (an info write never completes: it may take effect at any later time, as in Knossos)
        later = [
            i["value"] for i, d in writes if d is not None and d["type"] != "fail" and _end(d) > before[-1][0]["at"]
        ]
        stale += done["value"] not in later
    # the final read: the last ok read invoked after the heal; a key with acknowledged writes but none is unchecked
    final = [(i, d) for i, d in ok if i["f"] == "read" and i["at"] > heal][-1:]
    checked = [(i, d) for i, d in acked if final and d["at"] < final[0][0]["at"]]
    value = final[0][1]["value"] if final else None

    def kept(write: dict) -> bool:  # the final read shows it, or a write of what it shows may be current after it
        later = [i["value"] for i, d in writes if d is not None and d["type"] != "fail" and _end(d) > write["at"]]
        return write["value"] == value or value in later

    # lost: an acknowledged write the final read misses that no later or concurrent write explains (the initial
    # value, None, explains none: a final read of None after an acknowledged write lost it)
    lost = sum(1 for i, _ in checked if not kept(i)) if final or not acked else None
    # overwritten: one side's acknowledged write of the partition, gone after the heal because the final read shows
    # the other side's write of the partition (each side writes once then, neither seeing the other's)
    during = [(i, d) for i, d in writes if times["partition"] <= i["time"] < times["heal"]]
    winner = [i for i, d in during if d is not None and d["type"] != "fail" and final and i["value"] == value]
    overwritten = [
        i["value"] for i, d in during if winner and d is not None and d["type"] == "ok" and i["value"] != value
    ]
    return {
        "during": reads["during"],
        "after": reads["after"],
        "cut_ok": sum(d is not None and d["type"] == "ok" for d in cut),
        "cut": len(cut),
        "stale": stale,
        "lost": lost,
        "acked": len(checked),
        "every_op_ok": len(ok) == len(pairs),
        "overwritten": overwritten,
    }


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from([0.0, 0.1, 0.3]),
    duplicate=st.sampled_from([0.0, 0.3]),
    reorder=st.booleans(),
)
@example(seed=1004291, loss=0.3, duplicate=0.3, reorder=False)  # the final read is None: bob's write was lost
def test_every_claim_of_the_narration_is_what_the_history_shows(seed, loss, duplicate, reorder):
    """For any seed, under loss, duplication and reordering, each sentence of the account is recomputed from the
    raw history: the reads, who stayed available, disagreement, convergence, stale reads and lost writes (it once
    said 'one write was lost' where no acknowledged write was: the partition's cost is a stale read)."""
    sim, clients = partition.build(seed, loss=loss, duplicate=duplicate, reorder=reorder)
    sim.run(partition.scenario(sim, clients))
    text, facts = partition._verdicts(sim), _facts(list(sim.history))
    alice, bob = facts["during"].get("alice"), facts["during"].get("bob")
    assert f"During the partition alice read {alice!r} and bob read {bob!r}: " in text
    assert ("both sides stayed available" in text) == (facts["cut_ok"] == facts["cut"])
    assert f"{facts['cut_ok'] if facts['cut_ok'] == facts['cut'] else facts['cut'] - facts['cut_ok']} of " in text
    assert ("disagreed (AP)" in text) == (alice != bob)
    after = facts["after"]
    assert ("convergence is not shown" in text) == (len(after) < 2)
    assert ("the replicas converged" in text) == (len(after) == 2 and after["alice"] == after["bob"])
    assert ("did NOT converge" in text) == (len(after) == 2 and after["alice"] != after["bob"])
    assert f"Checked: {facts['stale']} stale read(s)" in text
    if facts["lost"] is None:  # the final read is the last ok read after the heal: without one, nothing to check
        assert ", lost writes not checked (no read succeeded after the heal), " in text
    else:
        assert f", {facts['lost']} of {facts['acked']} acknowledged writes lost, " in text
    assert "no acknowledged write was lost" not in text  # it said so while alice's write was gone (overwritten)
    for gone in facts["overwritten"]:
        assert f"acknowledged write of {gone!r} was silently overwritten" in text
    assert (f"and {len(facts['overwritten'])} acknowledged write(s) discarded" in text) == bool(facts["overwritten"])
    assert "one write was lost" not in text
    if facts["every_op_ok"]:  # every op ran alone and completed: linearizable exactly when no read was stale
        assert ("NOT linearizable" in text) == (facts["stale"] > 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_on_its_own_network_every_seed_tells_the_story_the_intro_tells(seed):
    """The module docstring (the report's intro): with the demo's network, for any seed, each side reads its own
    write while partitioned, the replicas converge after the heal, and alice's read was the stale one."""
    sim, clients = partition.build(seed)
    sim.run(partition.scenario(sim, clients))
    facts = _facts(list(sim.history))
    assert facts["during"] == {"alice": "v2-alice", "bob": "v2-bob"} and facts["every_op_ok"]
    assert facts["after"] == {"alice": "v2-bob", "bob": "v2-bob"}
    assert facts["stale"] == 1 and facts["lost"] == 0 and facts["overwritten"] == ["v2-alice"]
