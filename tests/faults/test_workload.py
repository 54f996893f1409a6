"""The lin-kv workload: Jepsen's process model, rate, keys, mix, and interleaving with faults."""

from collections import Counter

import pytest

import emulator as em
from emulator.check import pair_ops
from faults import Injector, ParamError, Partition, Schedule, Workload, fault_spans
from nodes.kv import SingleKV
from tests.common.nodes import Register


def run(workload, factory=SingleKV, n=3, seed=1, until=None, schedule=None, **config):
    """``workload`` against ``n`` servers; returns the simulation after the traffic ends."""
    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.003))
    for i in range(n):
        sim.add_node(f"n{i}", factory, **config)
    task = workload.start(sim)
    (schedule or Schedule()).play(sim, until=until or workload.duration + workload.timeout + 0.1)
    assert task.done()
    return sim


def invokes(sim):
    return [op for op in sim.history.client_ops() if op["type"] == "invoke"]


def test_each_process_has_one_operation_in_flight_and_info_retires_it():
    """Under crashes: histories pair up (one open op per process); a process that got info never invokes again."""
    schedule = Schedule().add(1.0, "crash", 1.0, count=1).add(2.5, "crash", 1.0, nodes=["n0"])
    sim = run(Workload(clients=4, rate=80, keys=2, timeout=0.2, duration=5.0), schedule=schedule)
    pair_ops(list(sim.history))  # raises on a second invoke while one is in flight
    retired = set()
    for op in sim.history.client_ops():
        assert op["process"] not in retired, "an op of a retired process"
        if op["type"] == "info":
            retired.add(op["process"])
    assert len(retired) >= 3


def test_processes_of_one_client_take_turns_on_its_node():
    """A client's fresh process continues on the same client node (the history records both)."""
    sim = run(
        Workload(clients=2, rate=40, timeout=0.2, duration=4.0),
        schedule=Schedule().add(1.0, "crash", 1.0, nodes=["n0"]),
    )
    by_client: dict = {}
    for op in invokes(sim):
        by_client.setdefault(op["client"], set()).add(op["process"])
    assert set(by_client) == {"c0", "c1"} and all(len(p) > 1 for p in by_client.values())
    assert not by_client["c0"] & by_client["c1"]


def test_the_rate_is_operations_per_second_over_all_clients():
    """rate=50 for 20 s against a fast store: about 1000 invocations in all, spread over the 5 clients."""
    sim = run(Workload(clients=5, rate=50, duration=20.0))
    ops = invokes(sim)
    assert 900 < len(ops) < 1100
    assert all(150 < count < 250 for count in Counter(op["client"] for op in ops).values())


def test_the_loop_is_closed_so_a_slow_store_gets_fewer_operations():
    """Against a store that takes 0.5 s per op, 2 clients at rate 100 manage at most ~2 ops per second each."""
    sim = run(Workload(clients=2, rate=100, duration=10.0, mix={"write": 1}), factory=Register, n=1, delay=0.5)
    assert 30 < len(invokes(sim)) <= 40


def test_uniform_keys_spread_evenly():
    """keys=4 uniform: each key gets about a quarter of the operations."""
    sim = run(Workload(clients=4, rate=200, keys=4, duration=10.0))
    shares = Counter(op["key"] for op in invokes(sim))
    total = sum(shares.values())
    assert set(shares) == {0, 1, 2, 3} and all(0.21 < c / total < 0.29 for c in shares.values())


def test_hot_key_sends_the_hot_fraction_to_key_zero():
    """hot-key with hot=0.8: 80% of ops on key 0, the rest spread over keys 1..4."""
    sim = run(Workload(clients=4, rate=200, keys=5, distribution="hot-key", hot=0.8, duration=10.0))
    shares = Counter(op["key"] for op in invokes(sim))
    total = sum(shares.values())
    assert 0.77 < shares[0] / total < 0.83
    assert all(0.03 < shares[k] / total < 0.07 for k in (1, 2, 3, 4))


def test_the_mix_sets_the_share_of_each_operation():
    """mix read 0.6 / write 0.3 / cas 0.1 shows in the invocations within a few percent."""
    sim = run(Workload(clients=4, rate=200, mix={"read": 0.6, "write": 0.3, "cas": 0.1}, duration=10.0))
    shares = Counter(op["f"] for op in invokes(sim))
    total = sum(shares.values())
    assert abs(shares["read"] / total - 0.6) < 0.04 and abs(shares["write"] / total - 0.3) < 0.04
    assert abs(shares["cas"] / total - 0.1) < 0.03


def test_writes_are_unique_and_some_cas_succeed_while_others_find_another_value():
    """Every written value is unique; cas ops both succeed and fail with 22 (precondition failed)."""
    sim = run(Workload(clients=4, rate=100, keys=2, mix={"write": 0.4, "cas": 0.6}, duration=10.0))
    written = [op["value"] for op in invokes(sim) if op["f"] == "write"] + [
        op["value"][1] for op in invokes(sim) if op["f"] == "cas"
    ]
    assert len(written) == len(set(written))
    outcomes = Counter(
        (op["type"], (op.get("error") or [None])[0])
        for op in sim.history.client_ops()
        if op["f"] == "cas" and op["type"] != "invoke"
    )
    assert outcomes[("ok", None)] > 20 and outcomes[("fail", 22)] > 20


def test_bound_routing_sends_client_i_to_server_i_mod_n():
    """routing=bound: c0 and c3 always ask n0, c1 asks n1, c2 asks n2."""
    sim = run(Workload(clients=4, rate=40, routing="bound", duration=3.0))
    assert {(op["client"], op["node"]) for op in invokes(sim)} == {
        ("c0", "n0"),
        ("c1", "n1"),
        ("c2", "n2"),
        ("c3", "n0"),
    }


def test_no_operation_starts_after_the_duration():
    """duration=3: the last invocation is before t=3 and every op has completed."""
    sim = run(Workload(clients=3, rate=60, duration=3.0))
    assert max(op["time"] for op in invokes(sim)) < 3.0
    assert all(done is not None for _, done in sim.history.completions())


def test_the_same_seed_gives_the_same_history():
    """Two runs with one seed record identical histories; another seed differs."""

    def history(seed):
        return list(run(Workload(clients=3, rate=50, duration=3.0), seed=seed).history)

    assert history(4) == history(4) and history(4) != history(5)


def test_client_operations_and_nemesis_steps_interleave_in_virtual_time():
    """While n0 (the lin-kv leader) is cut off, ops to n1 and n2 end info, ops to n0 succeed; all succeed around it."""
    sim = em.Simulation(seed=3, latency=em.Uniform(0.001, 0.003))
    for i in range(3):
        sim.add_node(f"n{i}", SingleKV)
    Workload(clients=3, rate=60, timeout=0.3, duration=6.0).start(sim)
    injector = Injector(sim)
    sim.run(until=2.0)
    injector.start(Partition(groups=[["n0"], ["n1", "n2"]]))
    sim.run(until=4.0)
    injector.heal()
    sim.run(until=6.5)
    (span,) = fault_spans(sim.history)
    outcome: dict = {}
    for invoke, done in sim.history.completions():
        when = (
            "during"
            if span.start + 0.01 <= invoke["time"] < span.stop - 0.3
            else ("outside" if invoke["time"] < span.start - 0.3 or invoke["time"] > span.stop + 0.01 else "edge")
        )
        side = "leader" if invoke["node"] == "n0" else "cut"
        outcome.setdefault((when, side), Counter())[done["type"]] += 1
    assert outcome[("during", "cut")]["ok"] == 0 and outcome[("during", "cut")]["info"] > 10
    assert outcome[("during", "leader")]["info"] == 0 and outcome[("during", "leader")]["ok"] > 4
    assert outcome[("outside", "cut")]["info"] == 0 and outcome[("outside", "leader")]["info"] == 0


@pytest.mark.parametrize(
    "options,message",
    [
        ({"clients": 0}, "clients: expected a whole number between 1 and 100000, found 0"),
        ({"keys": 10**7}, "keys: expected a whole number between 1 and 1000000, found 10000000"),
        ({"rate": -1}, "rate: expected a number > 0"),
        ({"distribution": "zipf"}, "distribution: expected one of 'uniform', 'hot-key', found 'zipf'"),
        ({"mix": {"append": 1}}, "mix: expected one of 'read', 'write', 'cas', found 'append'"),
        ({"mix": {"read": 0}}, "mix: expected at least one operation with a weight > 0"),
        ({"routing": "nearest"}, "routing: expected one of 'random', 'bound'"),
    ],
)
def test_bad_options_say_what_is_expected(options, message):
    """A bad workload option raises ParamError naming the option, what was found and what is expected."""
    with pytest.raises(ParamError, match=message.replace("(", r"\(")):
        Workload(**options)


def test_unique_writes_go_to_fresh_keys_written_once():
    """With unique=0.5 about half the writes create a fresh key, and no fresh key is written twice."""
    import emulator as em
    from faults import Workload
    from nodes.kv import SingleKV

    sim = em.Simulation(seed=3)
    for i in range(3):
        sim.add_node(f"n{i}", SingleKV)
    workload = Workload(clients=3, rate=200, keys=2, mix={"write": 1.0}, unique=0.5, duration=3.0)
    sim.run(workload.run(sim, workload.add_clients(sim)))
    writes = [op for op in sim.history if op["type"] == "invoke" and op["f"] == "write"]
    fresh = [op["key"] for op in writes if isinstance(op["key"], str)]
    assert 0.35 < len(fresh) / len(writes) < 0.65
    assert len(fresh) == len(set(fresh))
    assert set(workload.written) == {op["key"] for op in writes}


def test_final_reads_read_every_key_written_so_lost_writes_sees_them_all():
    """With final_reads the first client reads each shared and fresh key once traffic ends."""
    import emulator as em
    from emulator.check import lost_writes
    from faults import Workload
    from nodes.kv import SingleKV

    sim = em.Simulation(seed=4)
    for i in range(3):
        sim.add_node(f"n{i}", SingleKV)
    workload = Workload(clients=2, rate=100, keys=2, mix={"write": 1.0}, unique=0.5, duration=2.0, final_reads=True)
    sim.run(workload.run(sim, workload.add_clients(sim)))
    written = set(workload.written)
    end = max(op["time"] for op in sim.history if op["f"] == "write")
    read_after = {op["key"] for op in sim.history if op["f"] == "read" and op["type"] == "ok" and op["time"] > end}
    assert written and written <= read_after
    assert lost_writes(sim.history).unchecked == []


@pytest.mark.parametrize("clients, rate", [(2, 100.0), (8, 1.0)])
def test_the_traffic_and_its_final_reads_end_within_drain_of_the_duration(clients, rate):
    """No think time outlasts the duration: every key written is read within drain() of it, even at a slow rate."""
    workload = Workload(clients=clients, rate=rate, keys=2, timeout=0.1, duration=10.0, final_reads=True)
    sim = em.Simulation(seed=3)
    for i in range(3):
        sim.add_node(f"n{i}", SingleKV)
    task = workload.start(sim)
    sim.run(until=10.0 + workload.drain())
    finals = [(invoke, done) for invoke, done in sim.history.completions() if invoke["time"] >= 10.0]
    answered = {invoke["key"] for invoke, done in finals if done is not None and done["type"] in ("ok", "fail")}
    assert task.done() and workload.written and set(workload.written) <= answered  # ok, or "no such key"
    assert {invoke["f"] for invoke, _ in finals} == {"read"}


def test_single_writer_gives_each_key_one_writer_and_reads_go_anywhere():
    """single_writer: client i writes and cas-es only keys k with k % clients == i; every client reads every key."""
    workload = Workload(clients=4, rate=300, keys=6, duration=3.0, single_writer=True, unique=0.2)
    sim = run(workload)
    writers: dict = {}
    readers: dict = {}
    for op in invokes(sim):
        table = readers if op["f"] == "read" else writers
        table.setdefault(op["key"], set()).add(op["client"])
    assert {k: sorted(c) for k, c in writers.items() if isinstance(k, int)} == {k: [f"c{k % 4}"] for k in range(6)}
    assert all(len(c) == 1 for k, c in writers.items() if isinstance(k, str))
    assert all(len(readers[k]) == 4 for k in range(6))
    assert Workload(single_writer=True).to_dict()["single_writer"] is True
    with pytest.raises(ParamError, match="single_writer"):
        Workload(single_writer="yes")


def test_start_on_a_real_cluster_without_clients_says_how_to_add_them():
    """Only a Simulation's clients can be added for you; anything else gets a ConfigError showing the await."""
    with pytest.raises(em.ConfigError, match=r"needs its clients: clients = \[await cluster.add_client\(name\)"):
        Workload(clients=2, duration=1.0).start(object())
