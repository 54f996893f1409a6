"""The CAP table: its columns and definitions, many-seed summaries, cells, JSON rows and the written report."""

import json
import statistics

from hypothesis import given
from hypothesis import strategies as st

from capsim.cap.metrics import FIGURES
from capsim.cap.report import COLUMNS, JSON_KEYS, definitions, json_rows, markdown, summarize, write_report
from capsim.report import Run

#: One seed's row as ``capsim cap --json`` prints it (cp, seed 1).
ROW = {
    "availability": 0.826638655462185,
    "availability_minority": 0.0,
    "availability_majority": 0.9826086956521738,
    "linearizable": True,
    "stale_read_fraction": 0.0,
    "lost_writes": 0,
    "silently_overwritten": 0,
    "p50_ms": {"before": 17.536, "during": 17.311, "after": 17.419},
    "p99_ms": {"before": 25.505, "during": 26.551, "after": 26.175},
    "convergence_s": 0.24361485600000066,
    "unordered": 0,
    "acknowledged_writes": 189,
    "ops": 766,
}


def test_every_figure_has_one_definition_shown_in_the_table_and_help():
    """Each row of the CAP table is a FIGURES entry, labelled and defined there, and --help prints it."""
    assert [c.key for c in COLUMNS] == [key for key, _, _ in FIGURES]
    assert definitions() == [f"{label}: {definition}" for _, label, definition in FIGURES]


def _cells(row: dict) -> dict:
    """The table's cells for one run, by column key (the table is transposed: one column per run)."""
    return {column.key: column.cell(row) for column in COLUMNS}


def test_one_seeds_cells_read_as_the_readme_shows_them():
    """Percentages to 0.1%, the verdict in words, lost writes 'k of n', latency phases joined by '/'."""
    cells = _cells({**ROW, "linearizable": False, "unordered": 7, "lost_writes": 3})
    assert cells["availability"] == "82.7%" and cells["availability_minority"] == "0.0%"
    assert cells["linearizable"] == "NO (7 ops)" and cells["lost_writes"] == "3 of 189"
    assert _cells({**ROW, "unread_keys": 2})["lost_writes"] == "0 of 189 (2 keys unread)"
    assert cells["p50_ms"] == "18/17/17" and cells["convergence_s"] == "<=0.24"
    assert _cells({**ROW, "linearizable": None})["linearizable"] == "unknown"
    assert _cells({**ROW, "p99_ms": {"before": 9.95, "during": None, "after": 10.0}})["p99_ms"] == "9.9/-/10"


def test_the_convergence_cell_is_the_span_the_reads_pin_it_to():
    """'a-b': converged after the last disagreeing read (a) and by the first of the final agreeing run (b);
    '<=b' when no read after the heal disagreed (nothing seen diverging: b bounds it from above only)."""
    assert _cells({**ROW, "convergence_s": 0.348, "diverged_s": 0.289})["convergence_s"] == "0.29-0.35"
    assert _cells({**ROW, "convergence_s": 0.1, "diverged_s": None})["convergence_s"] == "<=0.10"
    assert _cells({**ROW, "convergence_s": None, "diverged_s": None})["convergence_s"] == "-"
    many = summarize("cp", [{**ROW, "diverged_s": None}, {**ROW, "convergence_s": 0.5, "diverged_s": 0.3}])
    assert _cells(many)["convergence_s"] == "0.37 [0.24-0.50]"


def test_many_seeds_cells_show_the_median_then_the_range():
    """Summarized seeds: 'median [min-max]' per cell, and the verdict as 'k/n yes'."""
    rows = [
        {**ROW, "availability": a, "linearizable": lin, "lost_writes": lost}
        for a, lin, lost in ((0.80, True, 0), (0.83, False, 4), (0.90, True, 1))
    ]
    cells = _cells(summarize("cp", rows))
    assert cells["availability"] == "83.0% [80.0-90.0]"
    assert cells["linearizable"] == "2/3 yes"
    assert cells["lost_writes"] == "1 [0-4]"
    unread = summarize("cp", [{**ROW, "unread_keys": 0}, {**ROW, "unread_keys": 2}])
    assert _cells(unread)["lost_writes"] == "0 [0-0] (up to 2 keys unread)"


def test_a_many_seeds_verdict_separates_unknown_from_no():
    """'k/n yes' alone hid whether the rest were NO or unknown: unknowns are named when there are any."""
    rows = [{**ROW, "linearizable": lin} for lin in (True, True, False, None)]
    assert _cells(summarize("cp", rows))["linearizable"] == "2/4 yes, 1 unknown"
    assert _cells(summarize("cp", rows[:3]))["linearizable"] == "2/3 yes"


numbers = st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False), st.integers(0, 10**6))


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "availability": numbers,
                "linearizable": st.sampled_from([True, False, None]),
                "p50_ms": st.fixed_dictionaries({"before": numbers, "during": numbers, "after": numbers}),
            }
        ),
        min_size=1,
        max_size=9,
    )
)
def test_summarize_gives_median_min_max_over_the_seeds_that_have_a_number(rows):
    """Per figure: median, min, max and the values of the seeds with a number (None when none has);
    the verdict as yes/no/unknown counts; each latency phase as the median over the seeds."""
    out = summarize("x", rows)
    values = [float(r["availability"]) for r in rows if r["availability"] is not None]
    expected = (
        {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}
        if values
        else None
    )
    assert out["availability"] == expected
    verdicts = [r["linearizable"] for r in rows]
    assert out["linearizable"] == {
        "yes": verdicts.count(True),
        "no": verdicts.count(False),
        "unknown": verdicts.count(None),
        "runs": len(rows),
    }
    for phase in ("before", "during", "after"):
        got = [float(r["p50_ms"][phase]) for r in rows if r["p50_ms"][phase] is not None]
        assert out["p50_ms"][phase] == (statistics.median(got) if got else None)


def test_json_rows_put_the_documented_keys_first_then_the_rest():
    """--json: config, then JSON_KEYS in order (None when a run lacks one), then the run's other figures."""
    (row,) = json_rows([Run("cp", [], {"ops": 766, "availability": 0.5, "extra": 1})])
    assert list(row)[: len(JSON_KEYS)] == list(JSON_KEYS)
    assert row["config"] == "cp" and row["availability"] == 0.5 and row["lost_writes"] is None
    assert list(row)[len(JSON_KEYS) :] == ["ops", "extra"]


def test_the_markdown_names_the_command_and_says_what_a_cell_is_only_over_seeds():
    """The command that made it is under the table; 'median over the seeds' only when cells are summaries."""
    one = markdown([Run("cp", [], ROW)], "capsim cap --config cp --markdown")
    many = markdown([Run("cp", [], summarize("cp", [ROW, ROW]))], "capsim cap --seeds 1-2 --markdown")
    assert "<sub>`capsim cap --config cp --markdown`.</sub>" in one and "median over the seeds" not in one
    assert "the median over the seeds, then [lowest-highest]" in many
    for line in definitions():
        label, definition = line.split(": ", 1)
        assert f"- **{label}**: {definition}.\n" in one


def test_write_report_writes_the_json_the_tables_and_the_page(tmp_path):
    """Many seeds (no single history, so no plots): cap.json holds json_rows, the page names each claim."""
    runs = [
        Run(
            name,
            [],
            summarize(name, [ROW, {**ROW, "availability": 0.5}]),
            extra={"label": f"{name} label", "claim": f"{name} claims", "conditions": "R + W > N"},
        )
        for name in ("cp", "ap")
    ]
    page = write_report(tmp_path, runs, {"seeds": [1, 2]})
    data = json.loads((tmp_path / "cap.json").read_text())
    assert data["meta"] == {"seeds": [1, 2]}
    assert data["rows"] == json.loads(json.dumps(json_rows(runs)))
    html = page.read_text()
    assert "<p class='note'>cp: cp label. Claim: cp claims. Conditions: R + W &gt; N.</p>" in html
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cap.json", "cap.md", "index.html"]
