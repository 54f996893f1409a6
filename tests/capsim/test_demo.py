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


def test_every_demo_takes_json_out_and_quick():
    """Each registered demo's function accepts the options `capsim demo` passes: none is silently lost."""
    import inspect

    from capsim.commands.demo import _load
    from capsim.demos import DEMOS

    for name in DEMOS:
        parameters = inspect.signature(_load(name)[1]).parameters
        assert {"seed", "console", "out", "as_json", "quick"} <= set(parameters), name


def test_the_default_demo_prints_json_with_what_each_side_read(capsys):
    """capsim demo --json (partition): valid JSON with the reads per side, the verdict and a row per operation."""
    import json

    assert main(["demo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    figures = data["figures"]
    assert data["demo"] == "partition" and figures["disagreed_during"] and figures["converged"]
    assert (figures["alice_read_during"], figures["bob_read_during"]) == ("v2-alice", "v2-bob")
    assert figures["alice_read_after"] == figures["bob_read_after"]
    rows = data["tables"]["operations"]
    assert len(rows) == 8 and {row["client"] for row in rows} == {"alice", "bob"}
    assert [row["network"] for row in rows].count("partitioned") == 4


def test_the_default_demo_writes_a_report_that_chromium_renders(tmp_path, capsys):
    """capsim demo --out DIR (partition): Markdown, JSON and a page with the timeline and the partition."""
    from tests.common.browser import dump_dom

    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert "What each client saw" in capsys.readouterr().out
    for name in ("summary.md", "summary.json", "operations.md", "operations.json", "partition.json", "index.html"):
        assert (tmp_path / name).exists(), name
    assert "v2-alice" in (tmp_path / "operations.md").read_text()
    dom = dump_dom(tmp_path / "index.html")
    assert "An AP store through a partition" in dom and dom.count('class="run timeline"') == 1
