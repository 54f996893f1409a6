"""The README's commands and examples work as written."""

import re
import subprocess
import sys

import pytest
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_readme_starts_with_exactly_two_commands():
    """The first code block holds two commands: install + main job, install + tests."""
    first = README.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(first) == 2
    assert "pip install" in first[0] and "capsim" in first[0]
    assert "pip install" in first[1] and "pytest" in first[1]
    assert README.index("```sh") < README.index("## ")


def test_the_tour_example_runs_as_written():
    """The tour's Python example runs in a fresh interpreter and prints what it says."""
    out = subprocess.run([sys.executable, "-c", blocks("python")[0]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "read 1 at virtual time" in out.stdout
    assert "n1 is cut off" in out.stdout


def test_the_pytest_example_passes(pytester):
    """The README's async pytest example passes with the plugin's sim fixture."""
    tour = blocks("python")[0].split("\nsim = ")[0]  # the imports and the Register class
    pytester.makepyfile(test_readme_example=tour + "\n\n" + blocks("python")[1])
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    return README[start:README.index("\n## ", start + 3)]


def test_the_cap_section_defines_every_figure_as_the_command_does():
    """Each row of the CAP table is defined in the README in the words of capsim cap --help."""
    from capsim.cap.report import COLUMNS

    section = _section("CAP, measured")
    for column in COLUMNS:
        assert f"- **{column.label}**: {column.help}." in section
    assert "<sub>`capsim cap --seeds 1-20 --config cp,ap,async,quorum,sync --markdown`." in section


def test_the_pacelc_section_names_each_difference_and_defines_every_column():
    """The PACELC section separates model and store, names each difference from WARS, defines each column."""
    from capsim.cap.pacelc import Sweep
    from capsim.cap.pacelc_report import DIFFERENCES, definitions, model_columns, store_columns

    section = _section("PACELC, measured")
    for line in DIFFERENCES:
        assert f"- {line}" in section
    waits = Sweep().waits_ms
    for line in definitions(model_columns(waits) + store_columns(waits)):
        assert f"- {line}" in section
    assert "capsim pacelc --wars" in section and "pareto:SCALE:ALPHA" in section


def test_no_claim_the_issue_corrected_is_back():
    """The sentences corrected by issue 11 stay corrected."""
    cap = _section("CAP, measured")
    assert "that is the C in CAP" not in cap and "the A of CAP, given up to keep the C" in cap
    assert "PC/EL" not in README
    assert "within a quarter of a second" not in cap


@pytest.mark.slow
def test_the_readme_cap_table_is_what_its_command_prints():
    """scripts/readme_tables.py --check: the CAP table is exactly a fresh run of its command."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "readme_tables.py"
    out = subprocess.run([sys.executable, str(script), "--check", "cap-table"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, "README's CAP table is stale: run python scripts/readme_tables.py"


CATALOGUE = ["microservices", "multi-primary", "queue", "gateway", "discovery", "edge", "canary"]


def _readme_table(demo: str) -> list[list[str]]:
    """The rows of the table under the README heading that names ``capsim demo <demo>``."""
    section = README.split(f"`capsim demo {demo}`", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize("demo", CATALOGUE)
def test_the_catalogue_tables_are_what_the_demos_print_for_seed_1(demo):
    """Every row of each catalogue table in the README is a row of that demo's own table, seed 1, figure for figure."""
    import importlib

    from capsim.demos import DEMOS
    from capsim.report import markdown_table

    module = importlib.import_module(DEMOS[demo].split(":")[0])
    table = module.report(module.Plan()).tables[0]
    printed = markdown_table(table.columns, table.runs, transpose=True).splitlines()[2:]
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in r.strip("|").split("|")] for r in printed)}
    for label, *cells in _readme_table(demo):
        assert rows.get(label) == cells, (demo, label, rows.get(label), cells)


def test_the_catalogue_prose_matches_its_tables():
    """The figures the catalogue's paragraphs quote are the ones its tables show."""
    cart = dict((row[0], row[1:]) for row in _readme_table("multi-primary"))
    items, lost = int(cart["cart items acknowledged"][0]), int(cart["missing from the converged carts"][0])
    visits, vlost = int(cart["counter increments acknowledged"][0]), int(cart["missing from the converged counter"][0])
    assert f"{round(100 * lost / items)}% of the cart" in README and 0.45 < vlost / visits < 0.55  # "half the increments"
    edge = dict((row[0], row[1:]) for row in _readme_table("edge"))
    peaks = edge["most requests at the origin at once"]
    assert int(peaks[2]) <= int(peaks[1]) / 2 + 1 and "coalescing halves its peak" in README
    assert "up to six versions old" in README and edge["most versions behind"][3] == "6"
    ms = dict((row[0], row[1:]) for row in _readme_table("microservices"))
    wasted = int(ms["requests finished after the client gave up"][0])
    assert f"finished {wasted:,} requests whose" in README
