"""Nemeses: every fault kind's effect on traffic, and the record (the injector's ledger: test_injector.py)."""

import asyncio
import itertools
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from emulator import check
from faults import (
    HEALS,
    Clock,
    Crash,
    Cut,
    Duplicate,
    Hostile,
    Injector,
    Latency,
    Loss,
    ParamError,
    Partition,
    Pause,
    Reorder,
    fault_spans,
    make_nemesis,
)
from tests.common.faults_nodes import first_server, heard, pingers

START, STOP, END = 0.5, 1.5, 2.5


def run_fault(nemesis, n=5, seed=1, primary=None, **sim_kwargs):
    """Pingers under ``nemesis`` from START to STOP; returns (sim, log, injector, recorded start value)."""
    sim, log = pingers(n, seed=seed, **sim_kwargs)
    injector = Injector(sim, primary=primary)
    sim.run(until=START)
    injector.start(nemesis)
    sim.run(until=STOP)
    injector.stop(nemesis)
    sim.run(until=END)
    return sim, log, injector, injector.log[0]["value"]


def during(log):
    # A little after the start and before the stop: pings in flight at the edges prove nothing.
    return heard(log, START + 0.05, STOP)


# -- partitions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,direction",
    [
        ("halves", "both"),
        ("halves", "out"),
        ("halves", "in"),
        ("isolate-one", "both"),
        ("isolate-one", "out"),
        ("isolate-one", "in"),
        ("majorities-ring", "both"),
        ("bridge", "both"),
        ("bridge", "out"),
        ("isolate-primary", "both"),
        ("isolate-primary", "in"),
    ],
)
def test_a_partition_drops_exactly_the_pings_its_grudge_names(shape, direction):
    """While a partition lasts, dst hears src iff src is not in dst's recorded grudge; before and after, all hear."""
    sim, log, _, value = run_fault(Partition(shape=shape, direction=direction), primary=first_server)
    grudge = value["grudge"]
    got = during(log)
    nodes = sim.servers
    assert grudge, "a partition must cut something"
    for src in nodes:
        for dst in nodes:
            if src != dst:
                assert ((src, dst) in got) == (src not in grudge.get(dst, [])), (src, dst, grudge)
    assert len(heard(log, STOP + 0.05, END)) == len(nodes) * (len(nodes) - 1)
    assert len(heard(log, 0.0, START)) == len(nodes) * (len(nodes) - 1)


def test_halves_splits_into_a_minority_and_a_majority_that_cannot_talk():
    """halves: sides of 2 and 3 out of 5; no ping crosses between them, every ping within a side arrives."""
    _, log, _, value = run_fault(Partition(shape="halves"))
    minority, majority = value["sides"]["minority"], value["sides"]["majority"]
    assert (len(minority), len(majority)) == (2, 3)
    got = during(log)
    assert not any((a, b) in got or (b, a) in got for a in minority for b in majority)
    assert all((a, b) in got for side in (minority, majority) for a in side for b in side if a != b)


def test_one_way_halves_lets_the_other_direction_through():
    """direction='out': the minority's pings never reach the majority, the majority's still reach the minority."""
    _, log, _, value = run_fault(Partition(shape="halves", direction="out"))
    minority, majority = value["sides"]["minority"], value["sides"]["majority"]
    got = during(log)
    assert not any((a, b) in got for a in minority for b in majority)
    assert all((b, a) in got for a in minority for b in majority)


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7])
def test_majorities_ring_every_node_hears_a_majority_and_no_two_the_same(n):
    """majorities-ring: each node hears a majority (itself included), and every node's majority differs."""
    sim, log, _, value = run_fault(Partition(shape="majorities-ring"), n=n, seed=n)
    got = during(log)
    views = [frozenset([dst] + [src for src in sim.servers if (src, dst) in got]) for dst in sim.servers]
    assert all(len(view) >= n // 2 + 1 for view in views)
    assert all(len(view) < n for view in views)
    assert len(set(views)) == n
    assert value["sides"] == {}


def test_bridge_node_talks_to_both_halves_which_cannot_talk_to_each_other():
    """bridge: the bridge node hears and is heard by everyone; left and right hear nothing from each other."""
    _, log, _, value = run_fault(Partition(shape="bridge"))
    left, right, (bridge,) = value["sides"]["left"], value["sides"]["right"], value["sides"]["bridge"]
    got = during(log)
    assert all((bridge, x) in got and (x, bridge) in got for x in left + right)
    assert not any((a, b) in got or (b, a) in got for a in left for b in right)


def test_isolate_primary_cuts_off_the_node_the_callback_names():
    """isolate-primary asks the callback (a callable or a 'module:function' path) and isolates that node."""
    for primary in (lambda sim: "n3", "tests.common.faults_nodes:first_server", "n2"):
        sim, log, _, value = run_fault(Partition(shape="isolate-primary"), primary=primary)
        chosen = value["sides"]["primary"][0]
        assert chosen == {"tests.common.faults_nodes:first_server": "n0", "n2": "n2"}.get(primary, "n3")
        got = during(log)
        assert not any((chosen, x) in got or (x, chosen) in got for x in sim.servers if x != chosen)


def test_isolate_primary_without_a_primary_says_how_to_give_one():
    """No primary anywhere: a ParamError naming the two ways to give one, and nothing recorded."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    with pytest.raises(ParamError, match="primary=callable"):
        injector.start(Partition(shape="isolate-primary"))
    assert injector.active == [] and sim.history.nemesis_ops() == []


def test_explicit_groups_cut_between_groups_only():
    """groups=[[n0], [n1, n2]]: n0 is cut off from n1 and n2, which still talk; n3 and n4 (in no group) reach all."""
    _, log, _, value = run_fault(Partition(groups=[["n0"], ["n1", "n2"]]))
    got = during(log)
    assert value["sides"] == {"group0": ["n0"], "group1": ["n1", "n2"]}
    assert ("n0", "n1") not in got and ("n2", "n0") not in got and ("n1", "n2") in got
    assert all((x, y) in got for x in ("n3", "n4") for y in ("n0", "n1", "n2"))


def test_partitions_do_not_cut_clients():
    """Clients reach both sides of a halves partition: an echo to every server answers."""
    sim, _ = pingers(5)
    injector = Injector(sim)
    injector.start(Partition(shape="halves"))
    client = sim.node("c0")

    async def echo_all():
        return [await client.rpc(name, {"type": "echo"}, timeout=0.5) for name in sim.servers]

    assert len(sim.run(echo_all())) == 5


# -- node faults -------------------------------------------------------------------------------------


def test_crash_silences_k_nodes_until_the_stop_restarts_them():
    """crash count=2: the two crashed nodes send and receive no pings while down, and ping again after restart."""
    sim, log, _, value = run_fault(Crash(count=2))
    down = value["nodes"]
    assert len(down) == 2
    got = during(log)
    assert not any(src in down or dst in down for src, dst in got)
    assert len(got) == 3 * 2
    after = heard(log, STOP + 0.05, END)
    assert all((d, x) in after and (x, d) in after for d in down for x in sim.servers if x != d)
    assert [op["f"] for op in sim.history.nemesis_ops()].count("restart") == 2


def test_crash_makes_client_operations_on_a_crashed_node_indeterminate():
    """An op sent to a crashed server times out and is recorded info; after the stop it is ok again."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    crash = injector.start(Crash(nodes=["n1"]))
    client = sim.node("c0")

    async def echo():
        try:
            await client.invoke("echo", dest="n1", timeout=0.2)
            return "ok"
        except em.Timeout:
            return "info"

    assert sim.run(echo()) == "info"
    injector.stop(crash)
    assert sim.run(echo()) == "ok"


def test_crash_never_picks_a_node_it_already_stopped():
    """Two crash faults of count 2 on 3 nodes: the second gets the one node left, not a crashed one."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    first = injector.start(Crash(count=2))
    second = injector.start(Crash(count=2))
    assert sorted(first.nodes + second.nodes) == sim.servers
    assert not any(sim.alive(n) for n in sim.servers)
    injector.heal()
    assert all(sim.alive(n) for n in sim.servers)


def test_pause_freezes_a_node_and_its_inbox_waits_for_the_resume():
    """A paused node sends nothing; pings sent to it during the pause arrive at the resume, late, not lost."""
    _, log, _, value = run_fault(Pause(count=1))
    (frozen,) = value["nodes"]
    got = during(log)
    assert not any(src == frozen for src, _ in got)
    late = [entry for entry in log if entry[2] == frozen and START + 0.05 <= entry[4] < STOP - 0.05]
    assert late and all(arrival >= STOP for arrival, *_ in late)
    assert len(late) >= 4 * 80  # every peer's pings over ~0.9 s, none lost


# -- clocks -------------------------------------------------------------------------------------------


def clock_readings(nemesis, times):
    """(true time, n0's clock) read by a client rpc at each time, with ``nemesis`` on n0 from START to STOP."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    client = sim.node("c0")
    readings = []

    async def read_at(t):
        await asyncio.sleep(t - sim.now)
        reply = await client.rpc("n0", {"type": "clock"}, timeout=1.0)
        readings.append((sim.now, reply["now"]))

    async def main():
        await asyncio.sleep(START)
        injector.start(nemesis)
        await asyncio.sleep(STOP - START)
        injector.stop(nemesis)

    async def everything():
        await asyncio.gather(main(), *(read_at(t) for t in times))

    sim.run(everything())
    return readings


def test_clock_bump_shifts_what_the_node_answers_and_the_stop_shifts_it_back():
    """bump offset=5: n0 answers true time + 5 (less the reply's flight) during the bump, true time after."""
    readings = clock_readings(Clock(mode="bump", offset=5.0, nodes=["n0"]), [0.2, 1.0, 2.0])
    skews = [node - true for true, node in readings]
    assert abs(skews[0]) < 0.01 and abs(skews[1] - 5.0) < 0.01 and abs(skews[2]) < 0.01


def test_clock_strobe_flips_the_offset_on_and_off():
    """strobe offset=3 period=0.1: readings 0.05 s into each period alternate between +3 and 0."""
    times = [START + 0.05 + 0.1 * i for i in range(8)]
    readings = clock_readings(Clock(mode="strobe", offset=3.0, period=0.1, nodes=["n0"]), times)
    on = [abs(node - true - 3.0) < 0.01 for true, node in readings]
    off = [abs(node - true) < 0.01 for true, node in readings]
    assert all(a or b for a, b in zip(on, off))
    assert on[::2] == [True] * 4 and off[1::2] == [True] * 4


def test_clock_drift_makes_the_node_clock_run_fast():
    """drift=0.5: over 0.8 s of true time n0's clock advances 1.2 s; after the stop it runs at true rate again."""
    readings = clock_readings(Clock(mode="drift", drift=0.5, nodes=["n0"]), [0.6, 1.4, 1.6, 2.4])
    (t0, c0), (t1, c1), (t2, c2), (t3, c3) = readings
    assert (c1 - c0) / (t1 - t0) == pytest.approx(1.5, rel=0.01)
    assert (c3 - c2) / (t3 - t2) == pytest.approx(1.0, rel=0.01)


# -- links ------------------------------------------------------------------------------------------


def delays(log, start, end, pairs=None):
    return [
        arrival - sent
        for arrival, src, dst, _, sent in log
        if start <= sent < end and (pairs is None or (src, dst) in pairs)
    ]


def test_latency_spike_slows_the_chosen_links_only_while_it_lasts():
    """latency on [n0, n1]: that link's pings take tens of ms during the spike; other links and after stay at 1 ms."""
    spike = Latency(latency={"uniform": [0.05, 0.1]}, links=[["n0", "n1"]])
    _, log, _, value = run_fault(spike, n=3, latency=em.Constant(0.001))
    assert value["links"] == [["n0", "n1"]]
    slow = delays(log, START + 0.05, STOP - 0.3, {("n0", "n1"), ("n1", "n0")})
    assert min(slow) >= 0.05 and statistics.mean(slow) > 0.07
    assert max(delays(log, START, STOP, {("n0", "n2"), ("n2", "n1")})) == pytest.approx(0.001)
    # FIFO: pings sent just after the stop wait for the last slow one (<= 0.1 s), then 1 ms again.
    assert max(delays(log, STOP + 0.15, END)) == pytest.approx(0.001)


def test_loss_drops_about_the_given_fraction_on_its_links():
    """loss=0.5 on all server links: about half the pings arrive during the fault, all of them before and after."""
    _, log, _, _ = run_fault(Loss(loss=0.5), n=3)
    sent_per_link = (STOP - START - 0.06) / 0.01
    got = during(log)
    share = sum(got.values()) / (6 * sent_per_link)
    assert 0.4 < share < 0.6
    assert sum(heard(log, STOP + 0.05, END - 0.01).values()) >= 6 * ((END - STOP - 0.07) / 0.01)


def test_duplicate_delivers_some_pings_twice_only_during_the_fault():
    """duplicate=0.5: about half the pings arrive twice during the fault, none before or after."""
    _, log, _, _ = run_fault(Duplicate(duplicate=0.5), n=3)

    def copies(start, end):
        seen: dict = {}
        for _arrival, src, dst, seq, sent in log:
            if start <= sent < end:
                seen[(src, dst, seq)] = seen.get((src, dst, seq), 0) + 1
        return sum(1 for c in seen.values() if c == 2) / len(seen)

    assert 0.4 < copies(START + 0.01, STOP - 0.01) < 0.6
    assert copies(0.0, START - 0.01) == 0 and copies(STOP + 0.01, END - 0.01) == 0


def test_reorder_lets_pings_overtake_each_other_only_during_the_fault():
    """reorder=1 with random latency: arrival order breaks sequence order during the fault; FIFO before and after."""
    _, log, _, _ = run_fault(Reorder(reorder=1.0), n=3, latency=em.Uniform(0.005, 0.03))

    def inversions(start, end):
        last: dict = {}
        count = 0
        for _arrival, src, dst, seq, sent in sorted(log):
            if start <= sent < end:
                count += seq < last.get((src, dst), 0)
                last[(src, dst)] = max(seq, last.get((src, dst), 0))
        return count

    assert inversions(START + 0.05, STOP - 0.05) > 20
    assert inversions(0.0, START - 0.05) == 0 and inversions(STOP + 0.05, END - 0.05) == 0


def test_a_link_fault_with_clients_also_slows_the_client_links():
    """clients=true adds every client-server link: a client's echo round trip grows from 2 ms to ~0.4 s."""
    sim, _ = pingers(3, latency=em.Constant(0.001))
    injector = Injector(sim)
    client = sim.node("c0")

    async def round_trip():
        start = sim.now
        await client.rpc("n1", {"type": "echo"}, timeout=5.0)
        return sim.now - start

    assert sim.run(round_trip()) == pytest.approx(0.002)
    spike = injector.start(Latency(latency=0.2, clients=True))
    assert sim.run(round_trip()) == pytest.approx(0.4)
    injector.stop(spike)
    assert sim.run(round_trip()) == pytest.approx(0.002)


def test_hostile_sets_all_four_settings_on_server_and_client_links_and_stop_restores_them():
    """hostile: loss, duplicate, reorder and Pareto latency on every link, client links included, until its stop."""
    sim, _ = pingers(3, latency=em.Constant(0.001))
    injector = Injector(sim)
    hostile = injector.start(Hostile())
    for pair in (("n0", "n1"), ("n2", "n0"), ("c0", "n1"), ("n1", "c0")):
        link = sim.network.link(*pair)
        assert (link.loss, link.duplicate, link.reorder) == (0.02, 0.1, 0.2)
        assert isinstance(link.latency, em.Pareto) and (link.latency.scale, link.latency.alpha) == (0.001, 1.5)
    value = injector.log[0]["value"]
    assert value["latency"] == {"pareto": [0.001, 1.5, 1.0]} and ["c0", "n0"] in value["links"]
    injector.stop(hostile)
    link = sim.network.link("c0", "n1")
    assert (link.loss, link.duplicate, link.reorder, link.latency.mean) == (0.0, 0.0, 0.0, 0.001)


def test_hostile_duplicates_reorders_and_loses_pings_while_it_lasts():
    """Under hostile: some pings arrive twice, some overtake earlier ones, some never arrive; none of it after."""
    _, log, _, _ = run_fault(Hostile(duplicate=0.2, reorder=0.3, loss=0.05), n=3)

    def damage(start, end):
        seen: dict = {}
        last: dict = {}
        inversions = 0
        for _arrival, src, dst, seq, sent in sorted(log):
            if start <= sent < end:
                seen[(src, dst, seq)] = seen.get((src, dst, seq), 0) + 1
                inversions += seq < last.get((src, dst), 0)
                last[(src, dst)] = max(seq, last.get((src, dst), 0))
        sent = 6 * round((end - start) / 0.01)
        return sum(c == 2 for c in seen.values()), inversions, sent - len(seen)

    twice, overtaken, lost = damage(START + 0.05, STOP - 0.05)
    assert twice > 50 and overtaken > 3 and lost > 5
    assert damage(STOP + 0.05, END - 0.05)[:2] == (0, 0)


def test_links_some_degrades_a_random_subset_and_records_it():
    """links='some': the recorded pairs lose pings, the other pairs lose none."""
    _, log, _, value = run_fault(Loss(loss=1.0, links="some"), n=5, seed=4)
    cut = {tuple(p) for p in value["links"]} | {tuple(reversed(p)) for p in value["links"]}
    got = during(log)
    assert 0 < len(value["links"]) < 10
    assert all(
        (pair in got) == (pair not in cut)
        for pair in ((a, b) for a in ("n0", "n1", "n2", "n3", "n4") for b in ("n0", "n1", "n2", "n3", "n4") if a != b)
    )


# -- the record ---------------------------------------------------------------------------------------


def test_start_and_stop_ops_bracket_the_kernel_ops_and_pair_by_id():
    """start-partition comes before the kernel's partition op, stop-partition after its heal; ids pair them."""
    sim, _, injector, _ = run_fault(Partition(shape="halves"))
    fs = [op["f"] for op in sim.history.nemesis_ops()]
    assert fs == ["start-partition", "partition", "heal", "stop-partition"]
    spans = fault_spans(sim.history)
    assert len(spans) == 1 and spans[0].kind == "partition" and spans[0].start == START and spans[0].stop == STOP
    assert set(spans[0].sides) == {"minority", "majority"} and spans[0].contains(1.0) and not spans[0].contains(2.0)
    assert injector.log[0]["stop"] == STOP


def test_heals_close_every_fault_window_in_the_checkers():
    """With faults.HEALS, emulator.check.fault_windows sees one closed window per fault."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    for nemesis in (Crash(), Pause(), Clock(), Loss(), Partition()):
        injector.start(nemesis)
        sim.run(until=sim.now + 0.5)
        injector.stop(nemesis)
        sim.run(until=sim.now + 0.5)
    windows = check.fault_windows(list(sim.history), heals=HEALS)
    assert len(windows) == 5 and all(w.end is not None for w in windows)


def test_the_same_seed_picks_the_same_targets():
    """Two runs with one seed crash and partition the same nodes; another seed differs somewhere."""

    def targets(seed):
        _, _, injector, _ = run_fault(Partition(shape="halves"), seed=seed)
        crash = injector.start(Crash(count=2))
        return injector.log[0]["value"]["sides"], crash.nodes

    assert targets(7) == targets(7)
    assert any(targets(7) != targets(s) for s in (8, 9, 10))


def test_misuse_names_the_problem():
    """Unknown kinds and parameters, bad values and double starts raise errors that say what to do."""
    with pytest.raises(ParamError, match="kind: expected one of partition, crash"):
        make_nemesis("flood")
    with pytest.raises(ParamError, match="shap: expected a parameter of partition"):
        make_nemesis("partition", shap="halves")
    with pytest.raises(ParamError, match="loss: expected a number >= 0 and <= 1, found 2"):
        Loss(loss=2)
    with pytest.raises(ParamError, match="groups: expected with shape 'groups'"):
        Partition(shape="halves", groups=[["n0"], ["n1"]])
    with pytest.raises(ParamError, match="groups: expected with shape 'groups'"):
        Partition(groups=[["n0"]])
    with pytest.raises(ParamError, match="groups: expected with shape 'groups'"):
        Partition(groups=[["n0"], []])
    with pytest.raises(ParamError, match="groups: expected each node in one group only \\(node 'n0' is in two"):
        Partition(groups=[["n0"], ["n1", "n0"]])  # refused when made, not when it strikes
    with pytest.raises(ParamError, match="majorities-ring"):
        Partition(shape="majorities-ring", direction="out").prepare(Injector(pingers(3)[0]))
    sim, _ = pingers(3)
    injector = Injector(sim)
    crash = injector.start(Crash())
    with pytest.raises(em.ConfigError, match="already active"):
        injector.start(crash)
    assert injector.stop(crash) and not injector.stop(crash)


# -- aimed at the leader, after an acknowledgement, flapping -----------------------------------------


def lin_kv_with_writes(n=5, seed=1, rate=0.02):
    """lin-kv (leader n0) on ``n`` servers and a client writing through n1 every ``rate`` seconds, forever."""
    from nodes.kv import SingleKV

    sim = em.Simulation(seed=seed, latency=em.Constant(0.001))
    for i in range(n):
        sim.add_node(f"n{i}", SingleKV)
    client = sim.add_client("c0")

    async def writes():
        for value in range(1, 10**6):
            try:
                await client.invoke("write", key="k", value=value, dest="n1", timeout=0.05)
            except (em.RPCError, em.Timeout):
                pass
            await asyncio.sleep(rate)

    sim.loop.create_task(writes())
    return sim


@pytest.mark.parametrize("kind", ["crash", "pause", "clock"])
def test_target_primary_hits_the_protocols_leader_first_then_count_minus_one_others(kind):
    """target='primary', count=3 on lin-kv: n0 (SingleKV.leader_of) and two other servers."""
    sim = lin_kv_with_writes()
    injector = Injector(sim)
    sim.run(until=0.1)
    nemesis = injector.start(make_nemesis(kind, target="primary", count=3))
    chosen = nemesis.nodes
    assert chosen[0] == "n0" and len(set(chosen)) == 3
    injector.stop(nemesis)
    with pytest.raises(ParamError, match="not both"):
        make_nemesis(kind, target="primary", nodes=["n1"])


@pytest.mark.parametrize("kind", ["crash", "pause", "clock"])
def test_target_primary_with_the_primary_held_by_another_fault_hits_no_stand_in(kind):
    """The leader n0 paused by one fault: target='primary' hits count - 1 others only, never a follower in its place."""
    sim = lin_kv_with_writes()
    injector = Injector(sim)
    sim.run(until=0.1)
    held = injector.start(Pause(nodes=["n0"]))
    alone = injector.start(make_nemesis(kind, target="primary", count=1))
    two = injector.start(make_nemesis(kind, target="primary", count=2))
    assert alone.nodes == [] and len(two.nodes) == 1 and "n0" not in two.nodes
    assert [entry["value"]["nodes"] for entry in injector.log[1:]] == [[], two.nodes]
    injector.heal()
    assert held not in injector.active and injector.free_servers() == sim.servers


@pytest.mark.parametrize("kind", ["crash", "pause", "clock"])
def test_target_primary_during_an_election_hits_no_one(kind):
    """Found by a review: with the primary just crashed and no successor yet, primary-replica's leader_of named
    the first server, a follower, and target='primary' paused it. No one leads: the leader's slot stays empty."""
    from nodes.replication import PRIMARY, PrimaryReplica

    sim = em.Simulation(seed=1)
    for i in range(3):
        sim.add_node(f"n{i}", PrimaryReplica, mode="sync")
    injector = Injector(sim)
    sim.run(until=1.0)
    sim.crash("n0")  # the first primary; a successor is elected, and n0 comes back as a follower
    sim.run(until=3.0)
    sim.restart("n0")
    sim.run(until=5.0)
    (leader,) = [n for n in sim.servers if sim.node(n).role == PRIMARY]
    assert leader != "n0" and sim.node("n0").role != PRIMARY  # the first server follows: the old stand-in
    injector.start(Crash(nodes=[leader]))
    assert not [n for n in sim.servers if sim.alive(n) and sim.node(n).role == PRIMARY]  # an election, now
    alone = injector.start(make_nemesis(kind, target="primary", count=1))
    two = injector.start(make_nemesis(kind, target="primary", count=2))
    assert alone.nodes == [] and len(two.nodes) == 1 and leader not in two.nodes


def test_after_ack_crashes_the_primary_right_after_the_next_acknowledged_write():
    """crash target=primary after=ack, started at 0.5: n0 goes down at the instant the next write's ok is recorded."""
    sim = lin_kv_with_writes()
    injector = Injector(sim)
    sim.run(until=0.5)
    nemesis = injector.start(Crash(target="primary", after="ack"))
    assert injector.active == [] and nemesis in injector.waiting
    sim.run(until=0.6)
    (start,) = [op for op in sim.history.nemesis_ops() if op["f"] == "start-crash"]
    ack = sim.history[start["value"]["after"]]
    assert ack["type"] == "ok" and ack["f"] == "write" and ack["time"] == start["time"] > 0.5
    assert start["value"]["nodes"] == ["n0"] and not sim.alive("n0")
    assert not any(op["type"] == "ok" and op["time"] > ack["time"] for op in sim.history.client_ops())
    injector.stop(nemesis)
    assert sim.alive("n0")


def test_a_stop_before_any_ack_cancels_an_after_ack_fault():
    """No write is acknowledged while the fault waits (the leader is cut off): the stop cancels it, nothing recorded."""
    sim = lin_kv_with_writes()
    injector = Injector(sim)
    sim.run(until=0.2)
    cut = sim.network.isolate("n0")
    nemesis = injector.start(Crash(target="primary", after="ack"))
    sim.run(until=0.5)
    assert injector.stop(nemesis) is False and nemesis not in injector.waiting
    sim.network.heal(cut)
    sim.run(until=0.8)
    assert sim.alive("n0") and not [op for op in sim.history.nemesis_ops() if "crash" in op["f"]]
    with pytest.raises(ParamError, match="'ack'"):
        Crash(after="write")


def test_a_flapping_partition_cuts_and_heals_every_50_to_200_ms_while_it_lasts():
    """flap=[0.05, 0.2]: the kernel records cut, heal, cut, ... each 50-200 ms apart; the stop leaves it healed."""
    sim, log = pingers(5)
    injector = Injector(sim)
    sim.run(until=0.5)
    nemesis = injector.start(Partition(shape="halves", flap=[0.05, 0.2]))
    sim.run(until=2.5)
    injector.stop(nemesis)
    sim.run(until=3.0)
    ops = [(op["f"], op["time"]) for op in sim.history.nemesis_ops() if op["f"] in ("partition", "heal")]
    kinds = [f for f, _ in ops]
    assert kinds[:4] == ["partition", "heal", "partition", "heal"] and len(kinds) >= 20 and kinds[-1] == "heal"
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(ops[:-1])]
    assert min(gaps) >= 0.05 - 1e-9 and max(gaps) <= 0.2 + 1e-9
    assert sum(heard(log, 2.6, 3.0).values()) >= 20 * 35  # every link back after the stop
    with pytest.raises(ParamError, match="low <= high"):
        Partition(flap=[0.2, 0.1])


@pytest.mark.parametrize("nemesis", [Latency(), Loss(), Duplicate(), Reorder(), Hostile()], ids=lambda n: n.kind)
def test_the_link_setting_nemeses_bracket_their_changes_in_the_history(nemesis):
    """README: set_link leaves no op of its own; the nemeses that call it record start-<kind> and stop-<kind>."""
    sim, _, _, _ = run_fault(nemesis)
    ops = [(op["f"], op["time"]) for op in sim.history.nemesis_ops()]
    assert ops == [(f"start-{nemesis.kind}", START), (f"stop-{nemesis.kind}", STOP)]


def test_a_flap_that_fails_to_draw_its_next_cut_is_reported_at_once_not_silently_dropped():
    """A primary callback that goes wrong mid-flap: the error lands in sim.errors when it happens."""
    sim, _ = pingers(3)
    names = iter(["n0", "n0", "zz"])
    injector = Injector(sim, primary=lambda _: next(names))
    nemesis = injector.start(Partition(shape="isolate-primary", flap=[0.1, 0.1]))
    sim.run(until=1.0)
    (error,) = sim.errors
    assert error.time == pytest.approx(0.4) and isinstance(error.exception, ParamError) and "zz" in str(error)
    assert "flap" in error.where
    injector.stop(nemesis)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from(["halves", "isolate-one", "majorities-ring", "bridge", "isolate-primary"]),
    low=st.integers(10, 200),
    spread=st.integers(0, 200),
    length=st.integers(1, 1500),
    seed=st.integers(0, 2**16),
)
def test_a_flapping_partition_alternates_cut_and_heal_within_its_range_and_ends_healed(
    shape, low, spread, length, seed
):
    """Any shape, any flap range: a cut at the start, then heal and cut in turn, each gap a draw within [low, high];
    the stop heals what is cut (and only then), and no server link stays cut."""
    low, high = low / 1000, (low + spread) / 1000
    sim, _ = pingers(5, seed=seed, interval=0.5)
    injector = Injector(sim, primary=first_server)
    nemesis = injector.start(Partition(shape=shape, flap=[low, high]))
    sim.run(until=length / 1000)
    injector.stop(nemesis)
    episodes: list = []  # (time, "cut" | "heal"), one per instant the partition changed
    for op in sim.history.nemesis_ops():
        if op["f"] in ("partition", "partition-oneway", "heal"):
            what = "heal" if op["f"] == "heal" else "cut"
            if not episodes or episodes[-1] != (op["time"], what):
                episodes.append((op["time"], what))
    assert [what for _, what in episodes] == ["cut", "heal"] * (len(episodes) // 2)
    assert episodes[0][0] == 0.0 and episodes[-1][0] <= length / 1000 + 1e-9
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(episodes[:-1])]
    assert all(low - 1e-9 <= gap <= high + 1e-9 for gap in gaps)
    assert not any(sim.network.cut(a, b) for a in sim.servers for b in sim.servers)
    # fault_spans reads one CutSpan per cut back from the history: from its cut to its heal, with the grudge of the
    # kernel's own partition calls at that instant (a new draw each time, not the first cut's)
    (span,) = fault_spans(sim.history, "partition")
    assert [(piece.start, piece.stop) for piece in span.cuts] == [
        (cut_at, heal_at) for (cut_at, _), (heal_at, _) in zip(episodes[0::2], episodes[1::2], strict=True)
    ]
    kernel = [op for op in sim.history.nemesis_ops() if op["f"] in ("partition", "partition-oneway")]
    for piece in span.cuts:
        calls = [(op["f"].replace("-", "_"), op["value"]) for op in kernel if op["time"] == piece.start]
        assert piece.grudge == Cut(shape, "both", {}, calls).grudge
        assert sorted(n for side in piece.sides.values() for n in side) == (sim.servers if piece.sides else [])
    sim.close()


def test_faults_aimed_at_the_primary_follow_it_through_failovers():
    """primary-replica: each crash, pause or isolation aimed at the primary hits the node that is primary of the
    highest epoch at that moment, the new one after every failover."""
    from nodes.failover import PRIMARY
    from nodes.replication import PrimaryReplica

    sim = em.Simulation(seed=3)
    for i in range(5):
        sim.add_node(f"n{i}", PrimaryReplica, mode="semi-sync", acks=2)
    injector = Injector(sim)
    hit = []
    for kind in ("pause", "crash", "partition", "crash"):
        sim.run(until=sim.now + 3.0)  # long enough to elect a primary after the last fault
        live = [sim.node(n) for n in sim.servers if sim.node(n) is not None and sim.node(n).role == PRIMARY]
        primary = max(live, key=lambda node: node.replog.epoch).name
        params = {"shape": "isolate-primary"} if kind == "partition" else {"target": "primary"}
        nemesis = injector.start(make_nemesis(kind, **params))
        assert (nemesis.cut.sides["primary"] if kind == "partition" else nemesis.nodes) == [primary]
        hit.append(primary)
        sim.run(until=sim.now + 1.0)  # the others elect a new primary meanwhile
        injector.stop(nemesis)
    assert len(set(hit)) >= 2  # a failover moved the primary, and the faults followed it


@pytest.mark.parametrize(
    "kind, params, words",
    [
        ("partition", {"flap": [1e-10, 1e-10]}, "1e-06 <= low <= high"),
        ("clock", {"mode": "strobe", "period": 1e-10}, "a number >= 1e-06"),
    ],
)
def test_a_flap_or_strobe_shorter_than_a_microsecond_is_refused(kind, params, words):
    """Found by a review: a flap of 1e-10 s or a strobe period of 1e-10 s was a run that never ended (a flap of
    1e-6 s took 17 s of wall time per 2.5 virtual s), as a random nemesis's 1e-9 interval once was."""
    with pytest.raises(ParamError, match=words):
        make_nemesis(kind, **params)
