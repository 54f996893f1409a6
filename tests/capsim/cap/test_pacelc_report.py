"""The PACELC report: both tables, the differences from WARS, one definition per header, and a JSON round trip."""

import json

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from capsim.cap.pacelc import Sweep, measure_replication
from capsim.cap.pacelc_report import (
    DIFFERENCES,
    VISIBILITY_HELP,
    definitions,
    markdown,
    model_columns,
    model_runs,
    probe_ms,
    store_columns,
    store_runs,
    visibility_cell,
)
from capsim.report import markdown_table, rich_table
from tests.common.pacelc_sweep import SWEEP


def _row(config="3/1/1", kind="quorum", waits=(0, 2, 10), p=0.25, strict=False):
    """A sweep row with every figure the tables read, each curve keyed by the waits."""
    curve = {wait: p / (1 + i) for i, wait in enumerate(waits)}
    row = {
        "config": config,
        "kind": kind,
        "strict": strict if kind == "quorum" else None,
        "stale": p,
        "t_visibility": dict(curve),
        "read_p50_ms": 4.86,
        "read_p99_ms": 24.5,
        "write_p50_ms": 4.57,
        "write_p99_ms": 19.5,
        "p99_ms": 19.5,
    }
    if kind == "quorum":
        row.update(
            closed_form=2 / 3,
            wars=dict(curve),
            wars_capsim=dict(curve),
            visible_999_ms=13.2,
            visible_999_low_ms=11.9,
            visible_999_high_ms=15.1,
        )
    return row


def test_both_tables_fit_in_100_columns_without_cutting_a_header(partial):
    """The model's table and the store's table print whole at 100 columns, and the store's at 80 too.

    The model's no longer fits 80: its 99.9% column carries the t's confidence interval, '17.0 (15.9-18.6)'.
    """
    rows = [
        partial,
        {**partial, "config": "5/3/3"},
        {**measure_replication(Sweep(trials=50, waits_ms=(0, 2, 10)), "semi-sync"), "config": "p-r semi-sync k=1"},
    ]
    for width in (100, 80):
        console = Console(width=width, record=True)
        if width == 100:
            console.print(rich_table("model", model_columns(SWEEP.waits_ms), model_runs(rows)))
        console.print(rich_table("store", store_columns(SWEEP.waits_ms), store_runs(rows)))
        text = console.export_text()
        assert "…" not in text and max(len(line) for line in text.splitlines()) <= width


def test_the_markdown_names_every_difference_and_defines_every_column(partial):
    """--markdown: both tables, the three differences from WARS, and one definition per column."""
    text = markdown([partial], SWEEP)
    for line in DIFFERENCES:
        assert f"- {line}" in text
    for column in model_columns(SWEEP.waits_ms) + store_columns(SWEEP.waits_ms):
        assert f"- {column.header}: {column.help}" in text


def test_probe_is_ten_ms_when_swept_else_the_largest_wait():
    """The tables' second t: 10 ms if the sweep has it, else its largest t."""
    assert (probe_ms((0, 2, 10, 50)), probe_ms((0, 1, 5)), probe_ms((0,))) == (10, 5, 0)


def test_the_headers_name_the_waits_and_a_missing_point_shows_a_dash():
    """Headers read 't=0' and 't=10ms'; a curve without a point at a wait gives '-', not an error."""
    columns = model_columns((0, 2, 10))
    assert [c.header for c in columns][2:6] == ["WARS t=0", "capsim t=0", "WARS t=10ms", "capsim t=10ms"]
    row = _row()
    del row["wars_capsim"][10]
    cells = [c.cell(row) for c in columns]
    assert cells[2:6] == ["0.250", "0.250", "0.083", "-"]
    assert cells[0] == "no" and cells[1] == "0.667"


def test_the_model_table_shows_quorums_only_and_the_store_table_every_configuration():
    """A primary-replica row is no row of the model's table, and is one of the store's."""
    rows = [_row(), _row("p-r async", kind="replication")]
    assert [r.name for r in model_runs(rows)] == ["3/1/1"]
    assert [r.name for r in store_runs(rows)] == ["3/1/1", "p-r async"]


def test_definitions_give_one_line_per_distinct_header():
    """With one wait, t=0 is also the probe: its columns share a header, defined once."""
    columns = model_columns((0,)) + store_columns((0,))
    lines = definitions(columns)
    headers = [line.split(": ", 1)[0] for line in lines]
    assert len(headers) == len(set(headers)) == len({c.header for c in columns}) < len(columns)
    assert lines[0] == f"R+W>N: {columns[0].help}"


waits = st.lists(st.one_of(st.integers(0, 100), st.sampled_from([0.5, 2.5, 12.5])), min_size=1, max_size=4, unique=True)


@given(waits, st.floats(0, 1, allow_nan=False))
def test_rows_read_back_from_json_give_the_same_report(ws, p):
    """Rows saved as JSON (curve keys become strings) render the same tables as the rows in memory."""
    ws = tuple(sorted(ws))
    rows = [_row(waits=ws, p=p), _row("p-r sync", kind="replication", waits=ws, p=p)]
    again = json.loads(json.dumps(rows))
    sweep = Sweep(trials=100, model_trials=1000, waits_ms=ws)
    assert markdown(again, sweep) == markdown(rows, sweep)
    columns = model_columns(ws)
    assert markdown_table(columns, model_runs(again)) == markdown_table(columns, model_runs(rows))


def test_the_999_column_prints_the_t_and_its_interval():
    """'13.2 (11.9-15.1)', and '?' for a top the trials could not bound."""
    row = {"visible_999_ms": 13.24, "visible_999_low_ms": 11.9, "visible_999_high_ms": 15.06}
    assert visibility_cell(row) == "13.2 (11.9-15.1)"
    assert visibility_cell({**row, "visible_999_high_ms": None}) == "13.2 (11.9-?)"
    assert "95% confidence interval" in VISIBILITY_HELP
