"""capsim demo partition: the printed account tells the AP story."""

import io

from rich.console import Console

from capsim.cli import main
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


def test_capsim_demo_runs_from_the_command_line(capsys):
    """capsim demo exits 0 and prints the table."""
    assert main(["demo", "--seed", "2"]) == 0
    assert "What each client saw" in capsys.readouterr().out


def test_capsim_demo_list_names_every_demo_with_a_line_on_each(capsys):
    """capsim demo --list prints one line per demo: its name and what it shows."""
    from capsim.demos import DEMOS

    assert main(["demo", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(DEMOS)
    assert all(len(line.split()) > 3 for line in lines)


def test_report_options_on_a_demo_without_a_report_are_a_usage_error(capsys):
    """capsim demo partition --json exits 2 and names the demos that take --json."""
    assert main(["demo", "partition", "--json"]) == 2
    err = capsys.readouterr().err
    assert "--json" in err and "scaling" in err and "Traceback" not in err
