"""Tests of emulator/transport/links.py: the fault state every real node keeps."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

import emulator as em
from emulator.transport import LinkFaults

NAMES = ["n0", "n1", "n2", "n3"]

groups = st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3)
actions = st.one_of(
    st.tuples(
        st.just("partition"),
        st.lists(st.sampled_from(NAMES), unique=True, min_size=2).flatmap(
            lambda names: st.integers(1, len(names) - 1).map(lambda cut: [names[:cut], names[cut:]])
        ),
    ),
    st.tuples(st.just("partition_oneway"), st.tuples(groups, groups)),
    st.tuples(st.just("isolate"), st.sampled_from(NAMES)),
    st.tuples(st.just("heal"), st.none()),
    st.tuples(st.just("heal_one"), st.integers(0, 5)),
)


def _apply(faults: LinkFaults, sim: em.Simulation, action, args) -> None:
    if action == "partition":
        faults.apply("partition", {"groups": args})
        sim.network.partition(*args)
    elif action == "partition_oneway":
        faults.apply("partition_oneway", {"src": args[0], "dst": args[1]})
        sim.network.partition_oneway(*args)
    elif action == "isolate":
        faults.apply("isolate", {"name": args})
        sim.network.isolate(args)
    elif action == "heal_one":  # the args-th active cut, by id, when there is one
        active = faults.to_json()["cut_ids"]
        if active:
            cut = active[args % len(active)]
            faults.apply("heal", {"cuts": [cut]})
            sim.network.heal(cut)
    else:
        faults.apply("heal")
        sim.network.heal()


@given(st.lists(actions, max_size=6))
def test_cuts_match_the_simulated_network(steps):
    """After any sequence of partition/oneway/isolate/heal (all or by id), every link is cut exactly when the
    simulation's is: the hosts number cuts as the simulated network does."""
    sim = em.Simulation(seed=0)
    for name in NAMES:
        sim.add_node(name, em.Node)
    faults = LinkFaults()
    for action, args in steps:
        _apply(faults, sim, action, args)
    for a in NAMES:
        for b in NAMES:
            assert faults.blocked(a, b) == sim.network.cut(a, b), (a, b)
    copy = LinkFaults.from_json(faults.to_json())
    assert all(copy.blocked(a, b) == faults.blocked(a, b) for a in NAMES for b in NAMES)
    assert copy.to_json() == faults.to_json()


def test_a_cut_given_an_id_is_filed_under_it_and_healed_by_it():
    """The controller's id is kept (and the host's own numbering goes on past it); heal by id lifts that cut only."""
    faults = LinkFaults()
    faults.apply("isolate", {"name": "n1", "id": 5})
    faults.apply("partition", {"groups": [["n0"], ["n2"]]})
    assert faults.to_json()["cut_ids"] == [5, 6]
    faults.apply("heal", {"cuts": [5]})
    assert not faults.blocked("n1", "n0") and faults.blocked("n0", "n2")
    assert LinkFaults.from_json(faults.to_json()).to_json()["cut_ids"] == [6]
    assert LinkFaults.from_json({"rules": [{"isolate": {"name": "n1"}}]}).to_json()["cut_ids"] == [1]


@pytest.mark.parametrize(
    ("action", "payload", "message"),
    [
        ("heal", {"cuts": [9]}, r"heal\(9\): no such cut; the active ones are none"),
        ("heal", {"cuts": "all"}, "'cuts' must be a list of cut ids"),
        ("isolate", {"name": "n1", "id": 0}, "a cut's 'id' must be a positive integer, got 0"),
        ("isolate", {"name": "n1", "id": True}, "a cut's 'id' must be a positive integer, got True"),
        ("state", {"rules": [{"isolate": {"name": "n1"}}], "cut_ids": [1, 2]}, "'cut_ids' lists one id per rule"),
    ],
)
def test_bad_cut_ids_are_refused_and_change_nothing(action, payload, message):
    faults = LinkFaults()
    with pytest.raises(em.ConfigError, match=message):
        faults.apply(action, payload)
    assert faults.to_json() == LinkFaults().to_json()


def test_an_isolated_node_cannot_reach_unknown_names_either():
    """isolate cuts the node from any other name, clients the node never heard of included."""
    faults = LinkFaults()
    faults.apply("isolate", {"name": "n1"})
    assert faults.blocked("n1", "c7") and faults.blocked("c7", "n1")
    assert not faults.blocked("n1", "n1") and not faults.blocked("n2", "c7")


def test_link_settings_override_defaults_per_direction():
    """link sets one direction; defaults apply to the rest; reset_link drops the override."""
    faults = LinkFaults()
    faults.apply("defaults", {"loss": 0.1})
    faults.apply("link", {"src": "a", "dst": "b", "latency": {"uniform": [0.01, 0.02]}, "duplicate": 0.5})
    ab, ba = faults.settings("a", "b"), faults.settings("b", "a")
    assert (ab.loss, ab.duplicate, ab.latency.low, ab.latency.high) == (0.1, 0.5, 0.01, 0.02)
    assert (ba.loss, ba.duplicate, ba.latency.mean) == (0.1, 0.0, 0.0) and not ba.plain
    faults.apply("reset_link", {"src": "a", "dst": "b"})
    assert faults.settings("a", "b") == ba
    assert LinkFaults().settings("a", "b").plain


def test_hold_and_pause_are_undone_by_release_and_resume():
    """hold marks both directions until release; pause marks a node until resume."""
    faults = LinkFaults()
    faults.apply("hold", {"a": "n1", "b": "n2"})
    faults.apply("pause", {"name": "n3"})
    assert faults.held("n1", "n2") and faults.held("n2", "n1") and faults.paused("n3")
    restored = LinkFaults.from_json(faults.to_json())
    assert restored.held("n2", "n1") and restored.paused("n3")
    faults.apply("release", {"a": "n2", "b": "n1"})
    faults.apply("resume", {"name": "n3"})
    assert not faults.held("n1", "n2") and not faults.paused("n3") and faults.describe() == []


@pytest.mark.parametrize(
    "action, payload, words",
    [
        ("partition", {"groups": [["n1"]]}, "at least two groups"),
        ("partition", {"groups": [["n1"], ["n1", "n2"]]}, "in two groups"),
        ("partition", {"groups": ["n1", "n2"]}, "list of node names"),
        ("partition_oneway", {"src": "n1", "dst": ["n2"]}, "'src' must be a list"),
        ("isolate", {}, "'name' must be a node name"),
        ("link", {"src": "a", "dst": "b", "loss": 1.5}, "probability"),
        ("link", {"src": "a", "dst": "b", "latency": {"gamma": 2}}, "latency must be"),
        ("link", {"src": "a", "dst": "b", "latency": -1}, "cannot be negative"),
        ("explode", {}, "unknown control action"),
        ("state", {"rules": [{"nuke": {}}]}, "unknown rule kind"),
    ],
)
def test_a_malformed_action_raises_and_changes_nothing(action, payload, words):
    """Bad payloads raise ConfigError naming the problem; the state and version stay as they were."""
    faults = LinkFaults()
    faults.apply("partition", {"groups": [["n1"], ["n2"]]})
    before, version = faults.to_json(), faults.version
    with pytest.raises(em.ConfigError, match=words):
        faults.apply(action, payload)
    assert faults.to_json() == before and faults.version == version


def test_state_replaces_everything():
    """The state action makes one host's faults equal to another's (what a restarted node is given)."""
    source = LinkFaults()
    source.apply("partition_oneway", {"src": ["n1"], "dst": ["n2"]})
    source.apply("link", {"src": "n1", "dst": "n3", "loss": 0.5})
    target = LinkFaults()
    target.apply("isolate", {"name": "n9"})
    target.apply("state", source.to_json())
    assert target.to_json() == source.to_json()
