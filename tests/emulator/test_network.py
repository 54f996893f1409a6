"""The simulated network: latency, loss, duplication, ordering, cuts, holds, copies."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from tests.common.layout import slot_offsets
from tests.common.nodes import Echo, Recorder


def recorders(n=3, seed=1, **kwargs):
    sim = em.Simulation(seed=seed, **kwargs)
    nodes = {f"n{i}": sim.add_node(f"n{i}", Recorder) for i in range(n)}
    return sim, nodes


def send_all(sim, sender, dest, count, gap=0.0):
    async def main():
        for i in range(count):
            sim.node(sender).send(dest, {"type": "note", "i": i})
            if gap:
                await asyncio.sleep(gap)

    sim.run(main())
    sim.run()


def test_constant_latency_delivers_at_exactly_that_delay():
    """With Constant(0.005) a message sent at t=0 arrives at exactly t=0.005."""
    sim, nodes = recorders(latency=em.Constant(0.005))
    send_all(sim, "n0", "n1", 1)
    assert nodes["n1"].got == [(0.005, "n0", {"type": "note", "i": 0})]


def test_uniform_latency_stays_within_its_bounds_and_keeps_fifo_order():
    """Uniform latency varies per message, yet a link delivers in the order sent by default."""
    sim, nodes = recorders(latency=em.Uniform(0.001, 0.010))
    send_all(sim, "n0", "n1", 200, gap=0.0005)
    got = nodes["n1"].got
    assert [body["i"] for _, _, body in got] == list(range(200))
    delays = [t - body["i"] * 0.0005 for t, _, body in got]
    assert min(delays) >= 0.001 - 1e-9 and max(delays) <= 0.010 + 1e-6


def test_reorder_lets_messages_overtake_each_other():
    """reorder=True scrambles arrival order on one link, even with constant latency."""
    sim, nodes = recorders(latency=em.Constant(0.005), reorder=True)
    send_all(sim, "n0", "n1", 200, gap=0.0005)
    order = [body["i"] for _, _, body in nodes["n1"].got]
    assert sorted(order) == list(range(200))
    assert order != list(range(200))


def test_reorder_p_scrambles_only_that_share_and_the_rest_stay_in_order():
    """reorder=0.2 moves about 20% of messages; the other 80% arrive on time and in the order sent."""
    sim, nodes = recorders(latency=em.Constant(0.005), reorder=0.2)
    send_all(sim, "n0", "n1", 2000, gap=0.0005)
    on_time = [body["i"] for t, _, body in nodes["n1"].got if abs(t - body["i"] * 0.0005 - 0.005) < 1e-9]
    assert 0.77 < len(on_time) / 2000 < 0.83
    assert on_time == sorted(on_time)
    assert [body["i"] for _, _, body in nodes["n1"].got] != list(range(2000))


def test_fifo_false_keeps_every_latency_draw_and_lets_messages_overtake():
    """fifo=False: each message's delay is its own draw (mean kept, no waiting behind a slow one)."""
    delays = {}
    for fifo in (True, False):
        sim, nodes = recorders(latency=em.Uniform(0.001, 0.010), fifo=fifo)
        send_all(sim, "n0", "n1", 2000, gap=0.0001)
        got = nodes["n1"].got
        delays[fifo] = [t - body["i"] * 0.0001 for t, _, body in got]
        in_order = [body["i"] for _, _, body in got] == list(range(2000))
        assert in_order is fifo
    mean_free = sum(delays[False]) / 2000
    assert 0.0052 < mean_free < 0.0058 and min(delays[False]) >= 0.001 - 1e-9
    assert sum(delays[True]) / 2000 > mean_free + 0.001  # FIFO makes messages wait behind slower ones


def test_fifo_must_be_a_bool():
    """fifo=1 is refused with a message that says what the setting means."""
    with pytest.raises(em.ConfigError, match="fifo must be True"):
        em.Simulation(fifo=1)


def test_loss_drops_about_the_configured_fraction():
    """loss=0.3 drops close to 30% of 2000 messages, and the stats count them."""
    sim, nodes = recorders(loss=0.3)
    send_all(sim, "n0", "n1", 2000)
    delivered = len(nodes["n1"].got)
    assert 0.25 < 1 - delivered / 2000 < 0.35
    stats = sim.network.stats
    assert stats["sent"] == 2000 and stats["delivered"] == delivered and stats["dropped"] == 2000 - delivered


def test_duplicate_delivers_two_independent_copies():
    """duplicate=1 delivers every message twice, each as the receiver's own object."""
    sim, nodes = recorders(duplicate=1.0)
    send_all(sim, "n0", "n1", 5)
    got = nodes["n1"].got
    assert sorted(body["i"] for _, _, body in got) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert got[0][2] is not got[1][2]
    assert sim.network.stats["duplicated"] == 5


def test_the_receiver_gets_its_own_copy_of_the_body():
    """Mutating a body after sending, or after receiving, never reaches the other side."""
    sim, nodes = recorders()
    body = {"type": "note", "nested": {"list": [1, 2]}}

    async def main():
        sim.node("n0").send("n1", body)
        body["nested"]["list"].append(3)
        await asyncio.sleep(0.01)

    sim.run(main())
    received = nodes["n1"].got[0][2]
    assert received == {"type": "note", "nested": {"list": [1, 2]}}
    received["nested"]["list"].clear()
    assert body["nested"]["list"] == [1, 2, 3]


def test_partition_cuts_between_groups_and_heal_restores():
    """partition drops traffic across groups both ways; nodes in no group keep every link."""
    sim, _ = recorders(n=4)
    sim.network.partition(["n0", "n1"], ["n2"])
    net = sim.network
    assert net.cut("n0", "n2") and net.cut("n2", "n1")
    assert not net.cut("n0", "n1") and not net.cut("n3", "n2") and not net.cut("n0", "n3")
    net.heal()
    assert not net.cut("n0", "n2")


def test_partition_oneway_and_isolate():
    """partition_oneway cuts one direction; isolate cuts a node off from all others."""
    sim, _ = recorders(n=3)
    net = sim.network
    net.partition_oneway(["n0"], ["n1"])
    assert net.cut("n0", "n1") and not net.cut("n1", "n0")
    net.heal()
    net.isolate("n2")
    assert all(net.cut("n2", x) and net.cut(x, "n2") for x in ("n0", "n1"))
    assert not net.cut("n0", "n1")


def test_a_message_in_flight_when_its_link_is_cut_is_dropped_on_arrival():
    """A message sent before a partition, arriving after it, is dropped at delivery."""
    sim, nodes = recorders(latency=em.Constant(0.010))

    async def main():
        sim.node("n0").send("n1", {"type": "note", "i": 0})
        await asyncio.sleep(0.005)
        sim.network.partition(["n0"], ["n1"])
        await asyncio.sleep(0.010)

    sim.run(main())
    assert nodes["n1"].got == []
    assert sim.network.stats["dropped"] == 1


def test_a_message_in_flight_through_a_cut_that_heals_before_it_arrives_is_delivered():
    """The cut is looked at when a message arrives, not while it travels: a cut and a heal while it is on its way
    leave it alone (the README: a message that arrives while its link is cut is dropped)."""
    sim, nodes = recorders(latency=em.Constant(0.010))

    async def main():
        sim.node("n0").send("n1", {"type": "note", "i": 0})
        await asyncio.sleep(0.002)
        cut = sim.network.partition(["n0"], ["n1"])
        await asyncio.sleep(0.002)
        sim.network.heal(cut)
        await asyncio.sleep(0.010)

    sim.run(main())
    assert [body["i"] for _, _, body in nodes["n1"].got] == [0]
    assert sim.network.stats["dropped"] == 0


def test_hold_queues_messages_and_release_delivers_them_in_order():
    """Messages on a held link wait; release delivers them in order after a fresh latency."""
    sim, nodes = recorders(latency=em.Constant(0.001))

    async def main():
        sim.network.hold("n0", "n1")
        for i in range(3):
            sim.node("n0").send("n1", {"type": "note", "i": i})
        await asyncio.sleep(1.0)
        assert nodes["n1"].got == []
        sim.network.release("n0", "n1")
        await asyncio.sleep(0.01)

    sim.run(main())
    assert [(t, body["i"]) for t, _, body in nodes["n1"].got] == [(1.001, 0), (1.001, 1), (1.001, 2)]


def test_set_link_overrides_one_pair_and_reset_restores_defaults():
    """set_link changes a->b and b->a only; set_link_oneway one direction; reset_link undoes."""
    sim, nodes = recorders(latency=0.001)
    net = sim.network
    net.set_link("n0", "n1", latency=0.050)
    net.set_link_oneway("n0", "n2", loss=1.0)
    assert net.link("n0", "n1").latency.mean == 0.050 and net.link("n1", "n0").latency.mean == 0.050
    assert net.link("n0", "n2").loss == 1.0 and net.link("n2", "n0").loss == 0.0
    assert net.link("n1", "n2").latency.mean == 0.001
    send_all(sim, "n0", "n1", 1)
    assert nodes["n1"].got[0][0] == 0.050
    net.reset_link("n0", "n1")
    assert net.link("n0", "n1").latency.mean == 0.001
    net.set_defaults(latency=0.002)
    assert net.link("n0", "n1").latency.mean == 0.002 and net.link("n0", "n2").loss == 1.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda net: net.set_link("n0", "n1", latency=-0.001), "cannot be negative"),
        (lambda net: net.set_link("n0", "n1", latency=float("nan")), "finite"),
        (lambda net: net.set_link("n0", "n1", loss=1.5), "probability between 0 and 1"),
        (lambda net: net.set_defaults(duplicate=-0.1), "probability"),
        (lambda net: net.partition(["n0"], ["zz"]), "unknown node 'zz'"),
        (lambda net: net.partition("n0", "n1"), "list of node names"),
        (lambda net: net.partition(["n0"]), "at least two groups"),
        (lambda net: net.partition(["n0"], ["n0", "n1"]), "two groups"),
        (lambda net: net.hold("n0", "nope"), "unknown node"),
        (lambda net: net.set_link("n0", "n1", latency="fast"), "number of seconds or a distribution"),
    ],
)
def test_link_misuse_raises_a_config_error_that_says_what_to_do(call, message):
    """Bad link settings and unknown names fail at once with a helpful ConfigError."""
    sim, _ = recorders()
    with pytest.raises(em.ConfigError, match=message):
        call(sim.network)


def test_sending_to_an_unknown_node_says_so():
    """send to a name that was never added raises a ConfigError naming the known nodes."""
    sim, _ = recorders(n=2)
    with pytest.raises(em.ConfigError, match="unknown node 'n9'; known nodes: n0, n1"):
        sim.node("n0").send("n9", {"type": "note"})


def test_faults_record_themselves_as_nemesis_operations():
    """Every link fault appears in the history as an info op of the nemesis process."""
    sim, _ = recorders()
    sim.network.partition(["n0"], ["n1", "n2"])
    sim.network.heal()
    sim.network.hold("n0", "n1")
    sim.network.release("n0", "n1")
    ops = sim.history.nemesis_ops()
    assert [op["f"] for op in ops] == ["partition", "heal", "hold", "release"]
    assert ops[0]["value"] == [["n0"], ["n1", "n2"]] and all(op["type"] == "info" for op in ops)


actions = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(["n0", "n1", "n2"]), st.sampled_from(["n0", "n1", "n2"])),
        st.tuples(st.just("partition"), st.sampled_from(["n0", "n1", "n2"])),
        st.tuples(st.just("heal")),
        st.tuples(st.just("wait"), st.integers(1, 8)),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(actions, st.integers(0, 2**16))
def test_a_message_arrives_iff_its_link_is_open_at_send_and_at_arrival(script, seed):
    """Property: with a model of the cuts over time, delivery matches exactly."""
    latency = 0.0045  # never on the 1 ms grid of the script's faults: no ties
    sim, nodes = recorders(seed=seed, latency=em.Constant(latency))
    timeline: list = [(0.0, None)]  # (time, isolated node or None), in order
    expected = []

    def isolated_at(at):
        return [iso for t, iso in timeline if t <= at][-1]

    def cut(isolated, a, b):
        return isolated is not None and a != b and isolated in (a, b)

    async def main():
        loop = asyncio.get_running_loop()
        for i, action in enumerate(script):
            if action[0] == "send":
                sim.node(action[1]).send(action[2], {"type": "note", "i": i})
                expected.append((i, action[1], action[2], timeline[-1][1], loop.time()))
            elif action[0] == "partition":
                sim.network.heal()
                sim.network.isolate(action[1])
                timeline.append((loop.time(), action[1]))
            elif action[0] == "heal":
                sim.network.heal()
                timeline.append((loop.time(), None))
            else:
                await asyncio.sleep(action[1] / 1000)
        await asyncio.sleep(0.01)

    sim.run(main())
    arrived = sorted(body["i"] for node in nodes.values() for _, _, body in node.got)
    should = sorted(i for i, a, b, iso, t in expected if not cut(iso, a, b) and not cut(isolated_at(t + latency), a, b))
    assert arrived == should


def test_echo_round_trip_costs_two_latencies():
    """An rpc to a node 3 ms away returns after exactly 6 ms of virtual time."""
    sim = em.Simulation(seed=3, latency=em.Constant(0.003))
    sim.add_node("n0", Echo)
    client = sim.add_client("c0")

    async def main():
        await client.rpc("n0", {"type": "echo", "echo": 1})
        return asyncio.get_running_loop().time()

    assert sim.run(main()) == 0.006


def test_replace_link_oneway_makes_the_overrides_exactly_the_settings_given():
    """overrides() reads one direction back; replace drops what is not given; a bad value changes nothing."""
    sim = em.Simulation(seed=1)
    for name in ("a", "b"):
        sim.add_node(name, Echo)
    net = sim.network
    net.set_link_oneway("a", "b", latency=0.02, loss=0.5)
    assert set(net.overrides("a", "b")) == {"latency", "loss"} and net.overrides("b", "a") == {}
    net.replace_link_oneway("a", "b", duplicate=0.25)
    assert net.overrides("a", "b") == {"duplicate": 0.25} and net.link("a", "b").loss == 0.0
    with pytest.raises(em.ConfigError, match="loss must be a probability"):
        net.replace_link_oneway("a", "b", loss=2.0)
    assert net.overrides("a", "b") == {"duplicate": 0.25} and net.link("a", "b").duplicate == 0.25
    net.overrides("a", "b").clear()  # a copy: the link keeps its overrides
    assert net.overrides("a", "b") == {"duplicate": 0.25}


def test_a_message_loads_one_line_of_its_link_to_be_sent_and_one_more_to_be_delivered():
    """Link's layout claim: the fields sending reads sit in one 64-byte line, and delivering reads that
    line's version and endpoint and one other line, so a 10,000-node run (links out of the caches)
    loads three lines of a link per message, not six. A Link with the GC header is 192 bytes, so
    every link sits at the same place in its lines."""
    from emulator.network import Link

    offsets = slot_offsets(Link("a", "b", None), Link.__slots__)
    assert sorted(offsets) == sorted(Link.__slots__)
    line = {name: offset // 64 for name, offset in offsets.items()}
    send = ["_constant_ns", "_delay_ns", "_endpoint", "_last_ns", "_plain", "_version"]
    deliver = ["_endpoint", "_version", "deliver", "deliver_kind", "deliver_record", "fast_path"]
    assert {line[name] for name in send} == {0}
    assert len({line[name] for name in deliver}) == 2
    assert (Link.__basicsize__ + 16) % 64 == 0


def test_a_message_in_flight_when_its_link_is_released_stays_behind_the_held_ones():
    """FIFO across a release: a message still on its way when the link is released waits for the held ones."""
    sim, nodes = recorders(latency=em.Constant(0.001))

    async def main():
        sim.network.hold("n0", "n1")
        sim.node("n0").send("n1", {"type": "note", "i": 0})  # reaches the held link at 1 ms
        await asyncio.sleep(0.0015)
        sim.node("n0").send("n1", {"type": "note", "i": 1})  # due at 2.5 ms
        await asyncio.sleep(0.0005)
        sim.network.release("n0", "n1")  # at 2 ms: 0 gets a fresh 1 ms, due at 3 ms
        await asyncio.sleep(0.01)

    sim.run(main())
    assert [(t, body["i"]) for t, _, body in nodes["n1"].got] == [(0.003, 0), (0.003, 1)]  # 1 waited behind 0
    assert sim.network.stats == {"sent": 2, "delivered": 2, "dropped": 0, "duplicated": 0}


def test_a_message_arriving_as_its_receiver_resumes_stays_behind_the_paused_ones():
    """FIFO across a resume: a message due the instant a node resumes arrives after those its pause held."""
    sim, nodes = recorders(latency=em.Constant(0.001))

    async def main():
        asyncio.get_running_loop().call_later(0.002, sim.resume, "n1")  # scheduled first: runs first at 2 ms
        sim.pause("n1")
        sim.node("n0").send("n1", {"type": "note", "i": 0})  # reaches the paused n1 at 1 ms
        await asyncio.sleep(0.001)
        sim.node("n0").send("n1", {"type": "note", "i": 1})  # due at 2 ms, the instant of the resume
        await asyncio.sleep(0.01)

    sim.run(main())
    assert [(t, body["i"]) for t, _, body in nodes["n1"].got] == [(0.002, 0), (0.002, 1)]


class Log(em.Node):
    """Appends (receiver, sender, i) for every note to a list that outlives crashes."""

    def __init__(self, log):
        self.log_ = log

    async def handle_note(self, msg):
        self.log_.append((self.name, msg.src, msg.body["i"]))


_NAMES = ["n0", "n1", "n2"]
_name = st.sampled_from(_NAMES)
_fault_steps = st.lists(
    st.one_of(
        st.tuples(st.just("send"), _name, _name).filter(lambda s: s[1] != s[2]),
        st.tuples(st.just("send"), st.just("n0"), st.just("n1")),  # one busy link, where faults meet traffic
        st.tuples(st.just("wait"), st.integers(1, 40)),  # tenths of a millisecond: latencies are 0.5-3 ms
        st.tuples(st.sampled_from(["pause", "resume", "isolate", "crash", "restart"]), _name),
        st.tuples(st.sampled_from(["hold", "release"]), st.just("n0"), st.sampled_from(["n1", "n2"])),
        st.tuples(st.just("heal")),
        st.tuples(st.just("duplicate"), st.sampled_from([0.0, 0.5, 1.0])),
        st.tuples(st.just("fifo"), st.booleans()),
    ),
    max_size=60,
)


def _run_steps(steps, seed, allowed):
    """Run ``steps`` (those whose kind is in ``allowed``), then undo every fault and run until quiet."""
    log: list = []
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.0005, 0.003))
    for name in _NAMES:
        sim.add_node(name, Log, log=log)
    sent: list = []  # (src, dst, i) in the order sent

    async def main():
        for i, step in enumerate(steps):
            kind = step[0]
            if kind not in allowed:
                continue
            if kind == "send":
                if sim.alive(step[1]):
                    sim.node(step[1]).send(step[2], {"type": "note", "i": i})
                    sent.append((step[1], step[2], i))
            elif kind == "wait":
                await asyncio.sleep(step[1] / 10_000)
            elif kind == "duplicate":
                sim.network.set_defaults(duplicate=step[1])
            elif kind == "fifo":
                sim.network.set_defaults(fifo=step[1])
            elif kind == "restart":
                if not sim.alive(step[1]):
                    sim.restart(step[1])
            elif kind == "isolate":
                sim.network.isolate(step[1])
            elif kind == "heal":
                sim.network.heal()
            elif kind in ("hold", "release"):
                getattr(sim.network, kind)(step[1], step[2])
            else:
                getattr(sim, kind)(step[1])
        sim.network.heal()
        for a in _NAMES:
            for b in _NAMES:
                if a < b:
                    sim.network.release(a, b)
        for name in _NAMES:
            sim.resume(name)
            if not sim.alive(name):
                sim.restart(name)

    sim.run(main())
    sim.run()
    return sim, sent, log


def _per_link(entries):
    links: dict = {}
    for dst, src, i in entries:
        links.setdefault((src, dst), []).append(i)
    return links


@settings(max_examples=150, deadline=None)
@given(_fault_steps, st.integers(0, 2**16))
def test_every_message_is_accounted_for_and_each_link_stays_in_order_under_any_faults(steps, seed):
    """Property, under pauses, holds, isolations, crashes, duplicates and links turned FIFO or not: every
    message sent (and every duplicate) is delivered or dropped once nothing is held any more; none arrives
    more often than it was sent and duplicated; while links stay FIFO, each delivers in the order sent."""
    sim, sent, log = _run_steps(steps, seed, allowed={s[0] for s in steps})
    stats = sim.network.stats
    assert stats["sent"] == len(sent)
    assert stats["sent"] + stats["duplicated"] == stats["delivered"] + stats["dropped"]
    assert stats["delivered"] == len(log)
    counts: dict = {}
    for _, _, i in log:
        counts[i] = counts.get(i, 0) + 1
    assert all(n <= 2 for n in counts.values())
    if ("fifo", False) not in steps:  # independent legs promise no order
        for link, order in _per_link(log).items():
            assert order == sorted(order), f"{link} delivered out of order: {order}"


@settings(max_examples=100, deadline=None)
@given(_fault_steps, st.integers(0, 2**16))
def test_pauses_and_holds_lose_nothing_and_deliver_every_message_once_in_order(steps, seed):
    """Property: with only pauses and holds (and duplicates), every message arrives once, or twice if
    duplicated, in the order sent on each link: what a pause or a hold queued is delivered after."""
    sim, sent, log = _run_steps(
        steps, seed, allowed={"send", "wait", "pause", "resume", "hold", "release", "duplicate"}
    )
    stats = sim.network.stats
    assert stats["dropped"] == 0
    assert stats["delivered"] == len(sent) + stats["duplicated"]
    firsts = list(dict.fromkeys(log))  # each message's first copy
    assert _per_link(firsts) == _per_link([(dst, src, i) for src, dst, i in sent])


_latencies = st.sampled_from(
    [
        em.Constant(0.002),
        em.Uniform(0.0005, 0.004),
        em.Exponential(0.002),
        em.LogNormal(0.002, 1.0),
        em.Pareto(0.001, 1.1, cap=0.5),
    ]
)
_sends = st.lists(st.tuples(_name, _name, st.integers(0, 30)), max_size=80)  # (src, dst, tenths of ms before)


def _send_all(sends, seed, **network):
    log: list = []
    sim = em.Simulation(seed=seed, **network)
    for name in _NAMES:
        sim.add_node(name, Log, log=log)
    sent = []

    async def main():
        for i, (src, dst, gap) in enumerate(sends):
            await asyncio.sleep(gap / 10_000)
            sim.node(src).send(dst, {"type": "note", "i": i})
            sent.append((src, dst, i))

    sim.run(main())
    sim.run()
    return sim, sent, log


@settings(max_examples=100, deadline=None)
@given(_sends, _latencies, st.integers(0, 2**16))
def test_without_faults_every_message_arrives_exactly_once_in_the_order_sent(sends, latency, seed):
    """Property: with no faults, whatever the latency distribution, each message arrives once, in order per link."""
    sim, sent, log = _send_all(sends, seed, latency=latency)
    assert sorted(log) == sorted((dst, src, i) for src, dst, i in sent)
    assert _per_link(log) == _per_link([(dst, src, i) for src, dst, i in sent])
    assert sim.network.stats == {"sent": len(sent), "delivered": len(sent), "dropped": 0, "duplicated": 0}


@settings(max_examples=100, deadline=None)
@given(
    _sends,
    _latencies,
    st.sampled_from([dict(fifo=False), dict(reorder=0.5), dict(reorder=True)]),
    st.integers(0, 2**16),
)
def test_reordering_and_independent_legs_still_deliver_every_message_exactly_once(sends, latency, order, seed):
    """Property: fifo=False and reorder=p change the order, never what arrives: each message exactly once."""
    sim, sent, log = _send_all(sends, seed, latency=latency, **order)
    assert sorted(log) == sorted((dst, src, i) for src, dst, i in sent)
    assert sim.network.stats == {"sent": len(sent), "delivered": len(sent), "dropped": 0, "duplicated": 0}


@settings(max_examples=60, deadline=None)
@given(_fault_steps, st.integers(0, 2**16))
def test_the_digest_depends_only_on_the_seed_and_the_schedule(steps, seed):
    """Property: a schedule of sends and faults run twice (other objects, other addresses, in between)
    gives the same trace digest and the same deliveries."""
    first, _, first_log = _run_steps(steps, seed, allowed={s[0] for s in steps})
    clutter = [object() for _ in range(1000)]  # the second run's objects land at other addresses
    second, _, second_log = _run_steps(steps, seed, allowed={s[0] for s in steps})
    del clutter
    assert first.trace_digest() == second.trace_digest()
    assert first_log == second_log


def test_a_duplicate_draws_its_own_latency_and_its_own_reorder():
    """README: 'A duplicate is a message of its own, with its own latency and reorder draw.'"""
    sim, nodes = recorders(latency=em.Uniform(0.001, 0.1), duplicate=1.0, fifo=False)
    send_all(sim, "n0", "n1", 50)
    arrivals: dict[int, list[float]] = {}
    for time, _, body in nodes["n1"].got:
        arrivals.setdefault(body["i"], []).append(time)
    assert all(len(times) == 2 for times in arrivals.values())
    assert all(a != b for a, b in arrivals.values())  # one shared draw would land both copies at once
    # reorder=0.5 on a FIFO link of constant latency: a copy left in order lands exactly 10 ms after its send,
    # a reordered one anywhere in [0, 20 ms). With one draw per pair, a pair would never be split between them.
    sim, nodes = recorders(latency=em.Constant(0.01), duplicate=1.0, reorder=0.5)
    send_all(sim, "n0", "n1", 100, gap=0.05)
    in_order: dict[int, list[bool]] = {}
    for time, _, body in nodes["n1"].got:
        in_order.setdefault(body["i"], []).append(abs(time - (body["i"] * 0.05 + 0.01)) < 1e-9)
    split = sum(sorted(pair) == [False, True] for pair in in_order.values())
    assert 25 <= split <= 75  # about half the pairs, as two independent draws of one half


def test_one_way_cuts_and_isolation_record_themselves_too():
    """README: every fault of its table is a nemesis op; partition_oneway and isolate included."""
    sim, _ = recorders()
    sim.network.partition_oneway(["n0"], ["n1"])
    sim.network.isolate("n2")
    sim.network.heal()
    assert [(op["f"], op["value"]) for op in sim.history.nemesis_ops()] == [
        ("partition-oneway", [["n0"], ["n1"]]),
        ("isolate", "n2"),
        ("heal", None),
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_reordered_message_keeps_the_links_mean_latency(seed):
    """README: reorder=p 'rescales its latency at random (mean kept)': every message reordered, constant 5 ms
    links, sends far apart: the delays spread over [0, 10 ms) and average 5 ms (within 4 standard errors)."""
    sim, nodes = recorders(seed=seed, latency=em.Constant(0.005), reorder=1.0)
    send_all(sim, "n0", "n1", 2000, gap=0.05)
    delays = [t - body["i"] * 0.05 for t, _, body in nodes["n1"].got]
    assert len(delays) == 2000 and 0 <= min(delays) < 0.0005 and 0.0095 < max(delays) < 0.01
    error = 0.01 / 12**0.5 / 2000**0.5  # the standard error of the mean of 2000 uniform draws over [0, 10 ms)
    assert abs(sum(delays) / len(delays) - 0.005) < 4 * error


def test_healing_one_cut_twice_in_one_call_heals_it_once_and_records_it():
    """heal(i, i) lifted the cut, then raised a bare KeyError, and the history never recorded the heal."""
    sim = em.Simulation(seed=1)
    for name in ("a", "b"):
        sim.add_node(name, em.Node)
    cut = sim.network.partition(["a"], ["b"])
    sim.network.heal(cut, cut)
    assert not sim.network.cut("a", "b")
    assert [op["f"] for op in sim.history] == ["partition", "heal"]
