"""The brokers: partitioned append-only logs, idempotent sends, groups with generations and fenced commits."""

import pytest

import emulator as em
from nodes.queue import Broker, coordinator_of, leader_of, partition_of
from tests.common.queue_cluster import BROKERS, TOPICS


def brokers(seed=1):
    sim = em.Simulation(seed=seed, latency=em.Constant(0.001))
    for name in BROKERS:
        sim.add_node(name, Broker, brokers=BROKERS, topics=TOPICS, session_timeout=0.5)
    return sim, sim.add_client("c0")


def rpc(sim, client, dest, body):
    try:
        return sim.run(client.rpc(dest, body, timeout=1.0))
    except em.RPCError as exc:
        return exc


def send(sim, client, key, msg, **extra):
    leader = leader_of(BROKERS, "orders", partition_of(key, 4))
    return rpc(sim, client, leader, {"type": "send", "topic": "orders", "key": key, "msg": msg, **extra})


def test_sends_get_dense_offsets_per_partition_and_polls_read_them_back():
    """Each partition's offsets are 0, 1, 2, ... in the order appended; a poll returns them from any offset."""
    sim, client = brokers()
    acks = [send(sim, client, "k", {"n": i}) for i in range(5)]
    assert [a["offset"] for a in acks] == [0, 1, 2, 3, 4] and len({a["partition"] for a in acks}) == 1
    partition = acks[0]["partition"]
    got = rpc(
        sim,
        client,
        leader_of(BROKERS, "orders", partition),
        {"type": "poll", "topic": "orders", "partition": partition, "offset": 2, "max": 2},
    )
    assert got["msgs"] == [[2, "k", {"n": 2}], [3, "k", {"n": 3}]]


def test_keys_spread_over_partitions_and_partitions_over_brokers():
    """Forty keys reach all four partitions; the partitions live on more than one broker."""
    assert {partition_of(f"key{i}", 4) for i in range(40)} == {0, 1, 2, 3}
    assert len({leader_of(BROKERS, "orders", p) for p in range(4)}) == 3


def test_a_send_to_the_wrong_broker_or_topic_is_a_definite_error_that_says_where():
    """Error 11 names the broker that holds the partition; an unknown topic is error 12."""
    sim, client = brokers()
    partition = partition_of("k", 4)
    leader = leader_of(BROKERS, "orders", partition)
    other = next(b for b in BROKERS if b != leader)
    error = rpc(sim, client, other, {"type": "send", "topic": "orders", "key": "k", "msg": {}})
    assert error.code == 11 and error.definite and f"{leader} does" in error.text
    assert rpc(sim, client, leader, {"type": "send", "topic": "nope", "key": "k", "msg": {}}).code == 12


@pytest.mark.parametrize("topic", [["orders"], {"t": 1}, None, 7])
def test_a_topic_that_is_not_a_name_is_a_malformed_request_not_a_crash(topic):
    """A list or dict as the topic is refused with error 12 naming the topics; the broker records no error."""
    sim, client = brokers()
    error = rpc(sim, client, BROKERS[0], {"type": "send", "topic": topic, "key": "k", "msg": {}})
    assert error.code == 12 and "topics: orders" in error.text
    assert sim.errors == []


def test_an_idempotent_send_is_appended_once_however_often_it_arrives():
    """The same producer and sequence number, sent three times, is one entry; its offset is repeated."""
    sim, client = brokers()
    acks = [send(sim, client, "k", {"n": 1}, producer="p", seq=7) for _ in range(3)]
    other = send(sim, client, "k", {"n": 2}, producer="p", seq=8)
    assert [a["offset"] for a in acks] == [0, 0, 0] and other["offset"] == 1
    leader = leader_of(BROKERS, "orders", acks[0]["partition"])
    assert len(sim.node(leader).partition_log("orders", acks[0]["partition"])) == 2


def group_rpc(sim, client, kind, member, **extra):
    return rpc(
        sim,
        client,
        coordinator_of(BROKERS, "g"),
        {"type": kind, "group": "g", "topic": "orders", "member": member, **extra},
    )


def test_members_share_the_partitions_and_a_new_member_rebalances():
    """Two members own disjoint halves; a third joining bumps the generation and old members must rejoin."""
    sim, client = brokers()
    a = group_rpc(sim, client, "join", "a")
    b = group_rpc(sim, client, "join", "b")
    assert b["generation"] == a["generation"] + 1
    a_again = group_rpc(sim, client, "join", "a")  # a learns the new assignment; the group is unchanged
    assert a_again["generation"] == b["generation"]
    assert sorted(a_again["partitions"] + b["partitions"]) == [0, 1, 2, 3] and not set(a_again["partitions"]) & set(
        b["partitions"]
    )
    group_rpc(sim, client, "join", "c")
    stale = group_rpc(sim, client, "heartbeat", "a", generation=b["generation"])
    assert stale.code == 22 and stale.definite and "join again" in stale.text


def test_a_commit_from_a_stale_generation_or_a_non_owner_is_refused():
    """Fencing: the group's offsets move only for the current owner, in the current generation."""
    sim, client = brokers()
    a = group_rpc(sim, client, "join", "a")
    partition = a["partitions"][0]
    ok = group_rpc(sim, client, "commit_offsets", "a", generation=a["generation"], offsets={str(partition): 5})
    assert ok["type"] == "commit_offsets_ok"
    b = group_rpc(sim, client, "join", "b")
    zombie = group_rpc(sim, client, "commit_offsets", "a", generation=a["generation"], offsets={str(partition): 9})
    assert zombie.code == 22
    owner_of_0 = "a" if 0 in group_rpc(sim, client, "join", "a")["partitions"] else "b"
    thief = "b" if owner_of_0 == "a" else "a"
    assert group_rpc(sim, client, "commit_offsets", thief, generation=b["generation"], offsets={"0": 3}).code == 22
    offsets = group_rpc(sim, client, "list_committed_offsets", "a")["offsets"]
    assert offsets == {str(partition): 5}


def test_a_member_without_heartbeats_is_dropped_after_the_session_timeout():
    """A silent member's partitions go to the others once session_timeout passes."""
    sim, client = brokers()
    group_rpc(sim, client, "join", "a")
    b = group_rpc(sim, client, "join", "b")
    sim.run(until=sim.now + 0.3)
    assert group_rpc(sim, client, "heartbeat", "b", generation=b["generation"])["type"] == "heartbeat_ok"
    sim.run(until=sim.now + 0.4)
    assert group_rpc(sim, client, "heartbeat", "b", generation=b["generation"]).code == 22  # a was dropped
    after = group_rpc(sim, client, "join", "b")
    assert after["partitions"] == [0, 1, 2, 3] and after["generation"] > b["generation"]


def test_a_restarted_coordinator_never_reissues_a_generation():
    """The generation is in storage: after a crash a zombie's old generation matches no owner."""
    sim, client = brokers()
    coordinator = coordinator_of(BROKERS, "g")
    a = group_rpc(sim, client, "join", "a")
    sim.crash(coordinator)
    sim.restart(coordinator)
    zombie = group_rpc(sim, client, "commit_offsets", "a", generation=a["generation"], offsets={"0": 1})
    assert zombie.code == 22
    assert group_rpc(sim, client, "join", "b")["generation"] > a["generation"]


@pytest.mark.parametrize(
    "config, match",
    [
        ({"brokers": "b0", "topics": TOPICS}, "brokers must be a non-empty list"),
        ({"brokers": BROKERS, "topics": {"orders": 0}}, "topics must map topic names to partition counts"),
        ({"brokers": BROKERS, "topics": TOPICS, "session_timeout": 0}, "session_timeout must be a positive"),
    ],
)
def test_bad_config_says_what_to_do(config, match):
    """A misconfigured broker fails at construction, naming the fix."""
    with pytest.raises(em.ConfigError, match=match):
        em.Simulation().add_node("b0", Broker, **config)


def test_a_late_duplicate_of_an_older_commit_does_not_rewind_the_group():
    """Commits only move forward: offset 3 arriving after 5 leaves 5."""
    sim, client = brokers()
    a = group_rpc(sim, client, "join", "a")
    for offset in (5, 3):
        group_rpc(sim, client, "commit_offsets", "a", generation=a["generation"], offsets={"0": offset})
    assert group_rpc(sim, client, "list_committed_offsets", "a")["offsets"] == {"0": 5}


def test_a_late_copy_of_an_idempotent_send_older_than_one_appended_since_is_refused():
    """seq 5 arrives after seq 6 was appended (its producer gave up on it): refused with 22, so the log stays in order.

    Another partition, or another producer, keeps its own sequence.
    """
    sim, client = brokers()
    newer = send(sim, client, "k", {"n": 6}, producer="p", seq=6)
    late = send(sim, client, "k", {"n": 5}, producer="p", seq=5)
    assert isinstance(late, em.RPCError) and late.code == 22 and late.definite and "older than 6" in late.text
    assert send(sim, client, "k", {"n": 6}, producer="p", seq=6)["offset"] == newer["offset"]  # still a duplicate
    other_key = next(f"k{i}" for i in range(40) if partition_of(f"k{i}", 4) != partition_of("k", 4))
    assert "offset" in send(sim, client, other_key, {"n": 5}, producer="p", seq=5)
    assert "offset" in send(sim, client, "k", {"n": 1}, producer="q", seq=1)
    log = sim.node(leader_of(BROKERS, "orders", partition_of("k", 4))).partition_log("orders", partition_of("k", 4))
    assert [msg for _, msg in log] == [{"n": 6}, {"n": 1}]


@pytest.mark.parametrize("offsets", [{"x": 1}, {"0": "a"}, [1], {"0": -5}, {"0": 1.5}, {"9": 1}, {"0": True}])
def test_a_malformed_commit_is_error_12_naming_the_form_not_a_crash(offsets):
    """Offsets must map partition numbers (as strings) to ints >= 0: anything else is refused, and nothing moves."""
    sim, client = brokers()
    a = group_rpc(sim, client, "join", "a")
    error = group_rpc(sim, client, "commit_offsets", "a", generation=a["generation"], offsets=offsets)
    assert isinstance(error, em.RPCError) and error.code == 12 and "e.g. {'0': 12}" in error.text
    assert group_rpc(sim, client, "list_committed_offsets", "a")["offsets"] == {} and sim.errors == []


@pytest.mark.parametrize("most", ["x", 0, -1, None])
def test_a_poll_with_a_bad_max_is_error_12_not_a_crash(most):
    """max is how many messages to return: an int >= 1."""
    sim, client = brokers()
    error = rpc(
        sim,
        client,
        leader_of(BROKERS, "orders", 0),
        {"type": "poll", "topic": "orders", "partition": 0, "offset": 0, "max": most},
    )
    assert isinstance(error, em.RPCError) and error.code == 12 and "max must be an int >= 1" in error.text
    assert sim.errors == []


@pytest.mark.parametrize("kind", ["join", "heartbeat", "commit_offsets", "list_committed_offsets"])
@pytest.mark.parametrize("topic", [["orders"], {"t": 1}])
def test_a_group_request_whose_topic_is_not_a_name_is_error_12_not_a_crash(kind, topic):
    """A list or dict as a new group's topic is refused with 12; the broker records no error."""
    sim, client = brokers()
    error = rpc(sim, client, coordinator_of(BROKERS, "g"), {"type": kind, "group": "g", "topic": topic, "member": "a"})
    assert isinstance(error, em.RPCError) and error.code == 12 and "needs a known topic" in error.text
    assert sim.errors == []
