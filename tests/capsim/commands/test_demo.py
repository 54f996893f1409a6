"""Tests of capsim/commands/demo.py: a demo by name, the list, --json, --out and --quick."""

import json

from capsim.cli import main


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


def test_capsim_demo_list_json_is_the_same_list_as_an_object(capsys):
    """capsim demo --list --json: {name: what it shows}, the same lines as the table (--json was ignored)."""
    from capsim.demos import DEMOS

    assert main(["demo", "--list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert main(["demo", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert list(listed) == list(DEMOS)
    assert [f"{name:<{max(map(len, DEMOS))}}  {line}" for name, line in listed.items()] == table


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
