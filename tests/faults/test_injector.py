"""Tests of faults/injector.py: the Injector's ledgers, so that stopping one fault restores exactly
what the others and the user left, and its choice of targets."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import emulator as em
from emulator.transport import RealCluster
from faults import COMMON_KINDS, Clock, Crash, Injector, Latency, LinkFault, Loss, ParamError, Partition, Pause
from faults.strategies import RANDOM_SHAPES, millis
from faults.strategies import steps as fault_steps
from nodes.kv import SingleKV
from tests.common.faults_nodes import pingers

# -- exact undo: links, partitions, clocks -----------------------------------------------------------


def test_stopping_a_link_fault_restores_the_users_own_overrides():
    """A link the user set to 20 ms is back at exactly that after a spike and a loss fault on it stop."""
    sim, _ = pingers(3)
    slow = em.Constant(0.02)
    sim.network.set_link("n0", "n1", latency=slow)
    injector = Injector(sim)
    spike = injector.start(Latency(latency=0.5))
    loss = injector.start(Loss(loss=0.3, links=[["n0", "n1"]]))
    link = sim.network.link("n0", "n1")
    assert link.latency.mean == 0.5 and link.loss == 0.3
    injector.stop(spike)
    assert link.latency is slow and link.loss == 0.3
    injector.stop(loss)
    assert sim.network.overrides("n0", "n1") == {"latency": slow}
    assert sim.network.overrides("n1", "n2") == {}


def test_a_link_setting_the_user_changes_during_link_faults_is_still_there_after_they_stop():
    """During a spike and a loss fault on n0-n1 the user sets its latency to 20 ms and n1->n0's duplicate:
    the spike no longer holds the latency, and once both faults stop the link has the user's settings."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    spike = injector.start(Latency(latency=0.5, links=[["n0", "n1"]]))
    loss = injector.start(Loss(loss=0.3, links=[["n0", "n1"]]))
    slow = em.Constant(0.02)
    sim.network.set_link("n0", "n1", latency=slow)
    sim.network.set_link_oneway("n1", "n0", duplicate=0.1)
    injector.stop(loss)
    assert sim.network.overrides("n0", "n1") == {"latency": slow}
    assert sim.network.overrides("n1", "n0") == {"latency": slow, "duplicate": 0.1}
    injector.stop(spike)
    assert sim.network.overrides("n0", "n1") == {"latency": slow}
    assert sim.network.overrides("n1", "n0") == {"latency": slow, "duplicate": 0.1}


def test_overlapping_partitions_stop_independently():
    """Stopping the first of two overlapping partitions keeps the second's cut in place."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    first = injector.start(Partition(groups=[["n0"], ["n1", "n2"]]))
    second = injector.start(Partition(groups=[["n2"], ["n0", "n1"]]))
    injector.stop(first)
    assert not sim.network.cut("n0", "n1") and sim.network.cut("n2", "n0") and sim.network.cut("n1", "n2")
    injector.stop(second)
    assert not any(sim.network.cut(a, b) for a in sim.servers for b in sim.servers)


def test_overlapping_clock_faults_fall_back_to_the_one_still_active():
    """A drift started during a bump on the same node: stopping the drift returns the node to the bump's offset."""
    readings = {}
    sim, _ = pingers(2)
    injector = Injector(sim)
    bump = injector.start(Clock(offset=2.0, nodes=["n0"]))
    drift = injector.start(Clock(mode="drift", drift=0.5, nodes=["n0"]))
    sim.run(until=1.0)
    readings["drift"] = sim.node("n0").now()
    injector.stop(drift)
    readings["bump"] = sim.node("n0").now() - sim.now
    injector.stop(bump)
    readings["none"] = sim.node("n0").now() - sim.now
    assert readings["drift"] == pytest.approx(1.5) and readings["bump"] == pytest.approx(2.0)
    assert readings["none"] == pytest.approx(0.0)


def test_stopping_a_clock_fault_hidden_under_a_later_one_leaves_the_clock_alone():
    """A bump under a drift on n0: stopping the bump neither moves n0's clock nor records a skew."""
    sim, _ = pingers(2)
    injector = Injector(sim)
    bump = injector.start(Clock(offset=2.0, nodes=["n0"]))
    injector.start(Clock(mode="drift", drift=0.5, nodes=["n0"]))
    sim.run(until=4.0)
    before, skews = sim.node("n0").now(), len([op for op in sim.history.nemesis_ops() if op["f"] == "skew"])
    injector.stop(bump)
    assert sim.node("n0").now() == before == pytest.approx(6.0)  # 4 s at 1.5x: no jump back to true time
    assert len([op for op in sim.history.nemesis_ops() if op["f"] == "skew"]) == skews


def test_a_clock_fault_s_stop_returns_the_clock_to_the_user_s_skew_and_a_skew_during_it_stays():
    """The user's skew before a clock fault is what its stop goes back to; one made while a strobe covers the node
    is the user's from then on: the strobe no longer flips that clock, and its stop leaves the user's value."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    sim.skew("n0", 0.25)
    bump = injector.start(Clock(offset=2.0, nodes=["n0"]))
    assert sim.clock_of("n0") == (2.0, 0.0)
    injector.stop(bump)
    assert sim.clock_of("n0") == (0.25, 0.0)
    strobe = injector.start(Clock(mode="strobe", offset=5.0, period=0.1, nodes=["n0", "n1"]))
    sim.run(until=sim.now + 0.05)
    sim.skew("n0", -1.0)
    sim.run(until=sim.now + 1.0)  # ten flips of the strobe: n1 follows them, n0 stays the user's
    assert sim.clock_of("n0") == (-1.0, 0.0) and sim.clock_of("n1") in ((5.0, 0.0), (0.0, 0.0))
    injector.stop(strobe)
    assert sim.clock_of("n0") == (-1.0, 0.0) and sim.clock_of("n1") == (0.0, 0.0)


def test_stopping_one_of_overlapping_partitions_keeps_the_other_and_the_user_s_cut():
    """Two nemesis partitions overlap a cut the user made: stopping one lifts its cuts only."""
    sim = em.Simulation(seed=2)
    for i in range(5):
        sim.add_node(f"n{i}", SingleKV)
    mine = sim.network.partition_oneway(["n4"], ["n0"])
    injector = Injector(sim)
    a = injector.start(Partition(shape="groups", groups=[["n0"], ["n1", "n2", "n3", "n4"]]))
    injector.start(Partition(shape="groups", groups=[["n1"], ["n0", "n2", "n3", "n4"]]))
    injector.stop(a)
    net = sim.network
    assert not net.cut("n0", "n2")  # a's cut is gone
    assert net.cut("n1", "n2")  # b's stays
    assert net.cut("n4", "n0") and mine  # and the user's own
    heals = [op["value"] for op in sim.history.nemesis_ops() if op["f"] == "heal"]
    assert heals and all(value is not None for value in heals)  # no heal-everything on the way


# -- crash and pause: only what the injector stopped ----------------------------------------------------


def test_a_crash_fault_never_picks_or_restarts_a_node_the_user_crashed():
    """The user's crashed n0 is not a target, and stopping the fault leaves it down."""
    sim, _ = pingers(5)
    sim.crash("n0")
    injector = Injector(sim)
    crash = injector.start(Crash(count=4))
    assert sorted(crash.nodes) == ["n1", "n2", "n3", "n4"] and injector.free_servers() == []
    injector.stop(crash)
    assert [sim.alive(name) for name in sim.servers] == [False, True, True, True, True]


def test_a_crash_fault_leaves_down_a_node_the_user_restarted_and_crashed_again():
    """A crash fault took n1; the user restarts it (the fault no longer holds it) and crashes it again: the
    fault's stop leaves n1 down."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    fault = injector.start(Crash(nodes=["n1"]))
    sim.restart("n1")
    assert injector.free_servers() == sim.servers
    sim.run(until=0.2)
    sim.crash("n1")
    injector.stop(fault)
    assert not sim.alive("n1") and [op["f"] for op in sim.history.nemesis_ops()][-2:] == ["crash", "stop-crash"]


def test_a_crash_fault_on_a_node_the_user_paused_ends_the_pause_and_its_stop_leaves_it_running():
    """Crash's docstring: a paused server counts as running; the crash ends its pause (as SIGKILL does to a
    stopped process), and the fault's restart leaves it running, not paused again."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    sim.pause("n1")
    fault = injector.start(Crash(nodes=["n1"]))
    assert not sim.alive("n1") and not sim.is_paused("n1")
    sim.run(until=0.2)
    injector.stop(fault)
    assert sim.alive("n1") and not sim.is_paused("n1")
    sim, _ = pingers(3)
    sim.pause("n1")
    assert "n1" in Injector(sim).start(Crash(count=3)).nodes  # drawn at random too: it is running


def test_a_pause_fault_resumes_only_the_nodes_it_paused():
    """Two pause faults on different nodes: stopping one resumes its nodes, the other's stay frozen."""
    sim, _ = pingers(4)
    injector = Injector(sim)
    first = injector.start(Pause(nodes=["n0", "n1"]))
    second = injector.start(Pause(nodes=["n2"]))
    assert injector.free_servers() == ["n3"]
    injector.stop(first)
    assert injector.free_servers() == ["n0", "n1", "n3"]
    injector.stop(second)
    assert injector.free_servers() == sim.servers


def test_a_pause_fault_leaves_paused_a_node_the_user_paused_first():
    """The user paused n1; a pause fault on n1 starts and stops: n1 is still paused, until the user resumes it."""
    sim, _ = pingers(3)
    sim.pause("n1")
    injector = Injector(sim)
    fault = injector.start(Pause(nodes=["n1"]))
    assert fault.nodes == ["n1"]
    injector.stop(fault)
    assert sim.is_paused("n1")
    sim.resume("n1")
    assert not sim.is_paused("n1")


def test_a_pause_fault_leaves_paused_a_node_the_user_paused_while_it_held_it():
    """A pause fault holds n1, the user pauses n1 too: the fault's stop leaves n1 paused."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    fault = injector.start(Pause(nodes=["n1"]))
    sim.run(until=0.2)
    sim.pause("n1")
    sim.run(until=0.4)
    injector.stop(fault)
    assert sim.is_paused("n1")
    assert [op["f"] for op in sim.history.nemesis_ops() if op["f"] in ("pause", "resume")] == ["pause", "pause"]
    sim.close()  # n1, paused before its first run, holds a task that never started: close() ends it


def test_pause_faults_of_two_injectors_on_one_node_resume_it_when_the_last_one_stops():
    """Two injectors (two schedules on one simulation) pause n1: it runs again only once both faults stopped."""
    sim, _ = pingers(3)
    first, second = Injector(sim), Injector(sim)
    a = first.start(Pause(nodes=["n1"]))
    b = second.start(Pause(nodes=["n1"]))
    first.stop(a)
    assert sim.is_paused("n1")
    second.stop(b)
    assert not sim.is_paused("n1")


def test_a_resume_or_a_crash_from_outside_ends_a_pause_fault_s_hold():
    """The user resumes (or crashes) a node a fault paused: its stop then resumes nothing, so a later pause
    of the user's holds."""
    for end in ("resume", "crash"):
        sim, _ = pingers(3)
        injector = Injector(sim)
        fault = injector.start(Pause(nodes=["n1"]))
        if end == "resume":
            sim.resume("n1")
        else:
            sim.crash("n1")
            sim.restart("n1")
        assert injector.free_servers() == sim.servers  # no longer held by the fault
        sim.pause("n1")
        injector.stop(fault)
        assert sim.is_paused("n1"), end
        assert [op["f"] for op in sim.history.nemesis_ops()][-1] == "stop-pause"
        sim.close()  # n1's restarted incarnation never ran: close() ends its tasks, the collector would not


# -- the front door: heal, stop, the log ----------------------------------------------------------------


def test_heal_stops_every_fault_latest_first_and_closes_the_log():
    """heal() returns how many it stopped; the stop ops come in reverse start order; every log entry has a stop."""
    sim, _ = pingers(3)
    injector = Injector(sim)
    for nemesis in (Partition(shape="halves"), Latency(latency=0.2), Crash()):
        injector.start(nemesis)
    sim.run(until=0.5)
    assert injector.heal() == 3 and injector.active == [] and injector.heal() == 0
    stops = [op["f"] for op in sim.history.nemesis_ops() if op["f"].startswith("stop-")]
    assert stops == ["stop-crash", "stop-latency", "stop-partition"]
    assert [entry["stop"] for entry in injector.log] == [0.5, 0.5, 0.5]
    assert all(sim.alive(name) for name in sim.servers) and not sim.network.cut("n0", "n1")


def test_stopping_a_fault_that_is_not_active_records_nothing():
    sim, _ = pingers(3)
    injector = Injector(sim)
    assert injector.stop(Loss(loss=0.5)) is False and list(sim.history.nemesis_ops()) == []


def test_an_injector_needs_a_fault_target_and_says_which_ones_are():
    with pytest.raises(em.ConfigError, match=r"drives an emulator\.Simulation or an emulator\.transport\.RealCluster"):
        Injector(object())


# -- targets ------------------------------------------------------------------------------------------


def test_the_primary_comes_from_a_module_path_a_name_or_the_protocol():
    """primary= as "module:function", as a server's name, or (lin-kv) from the protocol's leader_of."""
    sim, _ = pingers(3)
    assert Injector(sim, primary="tests.common.faults_nodes:first_server").primary_of() == "n0"
    assert Injector(sim, primary="n2").primary_of() == "n2"
    kv = em.Simulation(seed=1)
    for i in range(3):
        kv.add_node(f"n{i}", SingleKV)
    assert Injector(kv).primary_of() == type(kv.node("n0")).leader_of(kv)


def test_a_wrong_primary_says_what_to_give():
    sim, _ = pingers(3)
    with pytest.raises(ParamError, match="the name of a server \\(n0, n1, n2\\)"):
        Injector(sim, primary="c0").primary_of()
    with pytest.raises(ParamError, match="an importable 'module:function'"):
        Injector(sim, primary="tests.common.faults_nodes:nobody").primary_of()
    with pytest.raises(ParamError, match="give the nemesis primary="):
        Injector(sim).primary_of()


def test_link_pairs_are_sorted_deduplicated_and_cover_clients_when_asked():
    sim, _ = pingers(3)
    injector = Injector(sim)
    assert injector.link_pairs("all", clients=False) == [["n0", "n1"], ["n0", "n2"], ["n1", "n2"]]
    assert injector.link_pairs([["n1", "n2"], ["n1", "n2"]], clients=True) == [
        ["c0", "n0"],
        ["c0", "n1"],
        ["c0", "n2"],
        ["n1", "n2"],
    ]
    with pytest.raises(ParamError, match="pairs of node names from c0, n0, n1, n2"):
        injector.link_pairs([["n0", "n7"]], clients=False)


# -- a real cluster: the same injector, cuts healed by id ------------------------------------------------


@pytest.mark.asyncio
async def test_on_a_real_cluster_stopping_a_partition_heals_its_own_cut_only():
    """A user's cut and two nemesis partitions on real hosts: stopping one lifts its cut, on every node; the
    user's and the other's stay (no heal-everything-and-reapply: the heal op names the id)."""
    cluster = await RealCluster.local({name: SingleKV for name in ("n0", "n1", "n2", "n3")}, seed=2)
    try:
        mine = cluster.network.partition_oneway(["n3"], ["n0"])
        injector = Injector(cluster)
        a = injector.start(Partition(shape="groups", groups=[["n0"], ["n1", "n2", "n3"]]))
        injector.start(Partition(shape="groups", groups=[["n1"], ["n0", "n2", "n3"]]))
        injector.stop(a)
        await cluster.settle()
        on_node = (await cluster.status("n2"))["faults"]
        net = cluster.network
        assert not net.cut("n0", "n2") and net.cut("n1", "n2") and net.cut("n3", "n0") and mine == 1
        assert net.faults["cut_ids"] == [1, 3] and len([line for line in on_node if "partition" in line]) == 2
        heals = [op["value"] for op in cluster.history.nemesis_ops() if op["f"] == "heal"]
        assert heals == [[2]]
    finally:
        await cluster.close()


@pytest.mark.asyncio
async def test_on_a_real_cluster_a_pause_fault_leaves_paused_a_node_the_user_paused():
    """The same ledger on real hosts: the user paused n1, a pause fault on n1 starts and stops, and every
    node still has n1 paused; the user's resume then ends it."""
    cluster = await RealCluster.local({name: SingleKV for name in ("n0", "n1", "n2")}, seed=2)
    try:
        cluster.pause("n1")
        injector = Injector(cluster)
        injector.stop(injector.start(Pause(nodes=["n1"])))
        await cluster.settle()
        held = "paused n1" in (await cluster.status("n0"))["faults"]
        cluster.resume("n1")
        await cluster.settle()
        after = "paused n1" in (await cluster.status("n0"))["faults"]
        ops = [op["f"] for op in cluster.history.nemesis_ops()]
    finally:
        await cluster.close()
    assert held and not after
    assert ops == ["pause", "start-pause", "pause", "stop-pause", "resume"]


# -- any overlap of faults, stopped in any order: a state machine against a model ------------------------

MACHINE_SERVERS = ["n0", "n1", "n2"]
USER_SLOW = em.Constant(0.02)


def _by_value(overrides):
    """Link settings compared by value (distributions have no ==): the injector cannot tell equal values apart."""
    return {k: (type(v), vars(v)) if isinstance(v, em.Distribution) else v for k, v in overrides.items()}


class LedgerMachine(RuleBasedStateMachine):
    """Faults of every kind started, overlapped and stopped in any order, time passing between.

    After each step the kernel holds exactly what the user set plus what the
    active faults set: a link's overrides are the user's updated by each active
    link fault covering it in start order, but for the settings the user
    changed while that fault covered the link; a cut drops traffic iff the user's
    cut or an active partition's grudge says so; a node is down iff an active
    crash took it and no one restarted it since, or the user crashed it, and
    its clock reads the latest active clock fault on it (of either injector)
    that the user's own ``sim.skew`` has not taken it from since, else the
    user's last skew (0, 0 if none).
    Stopping a fault never moves the clock of a node whose latest clock fault
    is unchanged. Pauses come from three sides at once (this injector, a
    second injector on the same simulation, and the user's own ``sim.pause`` /
    ``sim.resume``): a node is paused iff someone holds a pause on it, where
    the user's resume or a crash of the node ends every hold on it.
    """

    def __init__(self):
        super().__init__()
        self.sim, _ = pingers(len(MACHINE_SERVERS), interval=0.1)
        self.sim.network.set_link_oneway("n0", "n1", latency=USER_SLOW)
        self.user_cut = self.sim.network.partition_oneway(["n2"], ["n1"])
        self.pairs = [(a, b) for a in self.sim.nodes for b in self.sim.nodes if a != b]
        self.base = {pair: self.sim.network.overrides(*pair) for pair in self.pairs}
        self.lost: list = []  # (link fault, link, setting): the user changed it while the fault covered the link
        self.injector = Injector(self.sim, primary="n1")
        self.other = Injector(self.sim, rng=self.sim.rng("other"))
        self.started: list = []
        self.holds: dict[str, list] = {n: [] for n in MACHINE_SERVERS}  # node -> who holds a pause on it
        self.down: dict = {}  # node -> who crashed it: a crash fault, or "user"
        self.clock_faults: list = []  # every clock fault of either injector, in start order
        self.user_clock = {n: (0.0, 0.0) for n in MACHINE_SERVERS}  # the user's last skew of each node
        self.clock_lost: set = set()  # (clock fault, node): the user skewed the node while the fault covered it

    def _started(self, nemesis):
        """Model a fault just started: a pause holds its nodes; a crash ends every hold on its nodes."""
        if isinstance(nemesis, Clock):
            self.clock_faults.append(nemesis)
        for node in getattr(nemesis, "nodes", None) or []:
            if isinstance(nemesis, Pause):
                self.holds[node].append(nemesis)
            elif isinstance(nemesis, Crash):
                self.holds[node] = []
                self.down[node] = nemesis
        return nemesis

    def _stopped(self, nemesis):
        for holders in self.holds.values():
            if nemesis in holders:
                holders.remove(nemesis)
        self.down = {node: owner for node, owner in self.down.items() if owner is not nemesis}

    @rule(step=fault_steps(MACHINE_SERVERS, 1.0, kinds=COMMON_KINDS, shapes=(*RANDOM_SHAPES, "isolate-primary")))
    def start(self, step):
        """Start the step's nemesis now (its at and duration are the machine's to choose)."""
        self.started.append(self._started(self.injector.start(step.nemesis())))

    @rule(
        kind=st.sampled_from(["crash", "pause", "bump", "strobe", "drift"]),
        aim=st.sampled_from(["random", "primary"]),
        count=st.integers(1, 3),
    )
    def start_node_fault(self, kind, aim, count):
        """A node fault (a clock of each mode) aimed at random servers or at the primary first."""
        mode = {} if kind in ("crash", "pause") else {"mode": kind, "offset": 2.0, "drift": 0.5, "period": 0.2}
        self.started.append(
            self._started(self.injector.start("clock" if mode else kind, target=aim, count=count, **mode))
        )

    @rule(node=st.sampled_from(MACHINE_SERVERS))
    def user_pause(self, node):
        """The user's own sim.pause (a crashed node has nothing to freeze)."""
        if self.sim.alive(node) and "user" not in self.holds[node]:
            self.holds[node].append("user")
        self.sim.pause(node)

    @rule(node=st.sampled_from(MACHINE_SERVERS))
    def user_resume(self, node):
        """The user's own sim.resume: the node runs, whoever held it."""
        self.sim.resume(node)
        self.holds[node] = []

    @rule(
        pair=st.sampled_from([(a, b) for a in ["c0", *MACHINE_SERVERS] for b in ["c0", *MACHINE_SERVERS] if a != b]),
        setting=st.sampled_from(["latency", "loss"]),
    )
    def user_set_link(self, pair, setting):
        """The user's own set_link_oneway (a value no fault uses): the setting is the user's from now on."""
        value = em.Constant(0.0137) if setting == "latency" else 0.0137
        self.sim.network.set_link_oneway(*pair, **{setting: value})
        self.base[pair] = {**self.base[pair], setting: value}
        self.lost += [(fault, pair, setting) for fault in self._active(LinkFault) if sorted(pair) in fault.pairs]

    @rule(node=st.sampled_from(MACHINE_SERVERS))
    def user_crash(self, node):
        """The user's own sim.crash: it ends every pause on the node, and no fault's stop restarts it."""
        if self.sim.alive(node):
            self.down[node] = "user"
            self.holds[node] = []
        self.sim.crash(node)

    @rule(node=st.sampled_from(MACHINE_SERVERS))
    def user_restart(self, node):
        """The user's own sim.restart of a crashed node, whoever crashed it."""
        if not self.sim.alive(node):
            del self.down[node]
            self.sim.restart(node)

    @rule(
        node=st.sampled_from(MACHINE_SERVERS), offset=st.sampled_from([0.0, 0.37]), drift=st.sampled_from([0.0, 0.013])
    )
    def user_skew(self, node, offset, drift):
        """The user's own sim.skew (values no fault uses): the clock is the user's, and stays so after any stop."""
        self.sim.skew(node, offset, drift)
        self.user_clock[node] = (offset, drift)
        self.clock_lost |= {(fault, node) for fault in self._active_clocks() if node in fault.nodes}

    @rule(
        nodes=st.lists(st.sampled_from(MACHINE_SERVERS), min_size=1, max_size=2, unique=True),
        mode=st.sampled_from(["bump", "strobe", "drift"]),
    )
    def other_clock(self, nodes, mode):
        """A second injector skews the named nodes' clocks: its faults and this injector's share one ledger."""
        self._started(self.other.start(Clock(nodes=nodes, mode=mode, offset=-3.0, drift=0.25, period=0.15)))

    @rule(nodes=st.lists(st.sampled_from(MACHINE_SERVERS), min_size=1, max_size=2, unique=True))
    def other_pause(self, nodes):
        """A second injector pauses the named nodes (those it does not hold already)."""
        self._started(self.other.start(Pause(nodes=nodes)))

    @precondition(lambda self: self.other.active)
    @rule(data=st.data())
    def other_stop(self, data):
        nemesis = data.draw(st.sampled_from(self.other.active))
        self._stopped(nemesis)
        assert self.other.stop(nemesis)

    @precondition(lambda self: self.injector.active)
    @rule(data=st.data())
    def stop(self, data):
        """Stop one active fault, whichever: the clocks of nodes whose latest clock fault stays do not move."""
        nemesis = data.draw(st.sampled_from(self.injector.active))
        unchanged = [
            n
            for n in self.sim.servers
            if self.sim.alive(n) and self._top_clock(n) is self._top_clock(n, without=nemesis)
        ]
        before = {n: self.sim.node(n).now() for n in unchanged}
        self._stopped(nemesis)
        assert self.injector.stop(nemesis)
        after = {n: self.sim.node(n).now() for n in unchanged if self.sim.alive(n)}
        assert after == {n: before[n] for n in after}

    @rule(wait=millis(0.5))
    def advance(self, wait):
        self.sim.run(until=self.sim.now + wait)

    @rule()
    def heal(self):
        for nemesis in self.injector.active:
            self._stopped(nemesis)
        self.injector.heal()
        self.model_is_kept()
        user_down = [n for n, owner in self.down.items() if owner == "user"]
        assert not self.injector.active and self.injector.free_servers() == sorted(
            set(self.sim.servers) - set(user_down)
        )
        assert all(_by_value(self.sim.network.overrides(*pair)) == _by_value(self.base[pair]) for pair in self.pairs)
        bare = [n for n in self.sim.servers if self._top_clock(n) is None]  # no clock fault of the other injector
        assert all(self.sim.clock_of(n) == pytest.approx(self.user_clock[n]) for n in bare)

    def teardown(self):
        self.sim.close()

    def _active_clocks(self):
        active = set(self.injector.active) | set(self.other.active)
        return [fault for fault in self.clock_faults if fault in active]

    def _top_clock(self, node, without=None):
        clocks = [
            fault
            for fault in self._active_clocks()
            if fault is not without and node in fault.nodes and (fault, node) not in self.clock_lost
        ]
        return clocks[-1] if clocks else None

    def _active(self, cls):
        return [n for n in self.injector.active if isinstance(n, cls)]

    @invariant()
    def model_is_kept(self):
        net = self.sim.network
        for pair in self.pairs:
            expected = dict(self.base[pair])
            for fault in self._active(LinkFault):
                if sorted(pair) in fault.pairs:
                    expected.update({k: fault.params[k] for k in fault.settings if (fault, pair, k) not in self.lost})
            assert _by_value(net.overrides(*pair)) == _by_value(expected), pair
            src, dst = pair
            cut = (src, dst) == ("n2", "n1") or any(src in p.cut.grudge.get(dst, ()) for p in self._active(Partition))
            assert net.cut(src, dst) == cut, pair
        assert {n for n in self.sim.servers if not self.sim.alive(n)} == set(self.down)
        assert {n: self.sim.is_paused(n) for n in self.sim.servers} == {n: bool(h) for n, h in self.holds.items()}
        for node in self.sim.servers:
            top = self._top_clock(node)
            offset, drift = top.reading if top is not None else self.user_clock[node]
            assert self.sim.clock_of(node) == (pytest.approx(offset), pytest.approx(drift)), node


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
