"""Tests of capsim/commands/pacelc.py: the model's table and the store's, reports, --wars, usage errors."""

import json

import pytest

from capsim.cli import main


def test_help_defines_every_figure(capsys):
    """capsim pacelc --help prints each figure's definition, word for word."""
    from capsim.cap.pacelc import Sweep
    from capsim.cap.pacelc_report import definitions, model_columns, store_columns

    with pytest.raises(SystemExit):
        main(["pacelc", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    waits = Sweep().waits_ms
    for line in definitions(model_columns(waits) + store_columns(waits)):
        assert " ".join(line.split()) in out


def test_pacelc_separates_the_model_from_the_store(capsys):
    """capsim pacelc: the model's table, the store's, the differences; --json carries both for each quorum."""
    args = [
        "pacelc",
        "--trials",
        "60",
        "--model-trials",
        "5000",
        "--jobs",
        "1",
        "--quorums",
        "3/1/1,3/2/2",
        "--t",
        "0,10ms",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    for text in (
        "The model: PBS",
        "capsim's store",
        "FIFO links",
        "A coordinator that owns a copy",
        "t from the client's acknowledgement",
    ):
        assert text in out
    assert main([*args, "--json"]) == 0
    rows = {row["config"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"3/1/1", "3/2/2"}
    assert rows["3/1/1"]["closed_form"] == 2 / 3 and rows["3/2/2"]["stale"] == 0
    assert set(rows["3/1/1"]["wars_capsim"]) == {"0", "10"} and rows["3/2/2"]["wars"]["0"] == 0


def test_pacelc_report_writes_both_tables_the_plots_and_a_page(tmp_path, capsys):
    """--out: the model's and the store's tables, the Markdown, the JSON, both plots and the page."""
    assert (
        main(
            [
                "pacelc",
                "--trials",
                "40",
                "--model-trials",
                "5000",
                "--jobs",
                "1",
                "--quorums",
                "3/1/1,5/2/2",
                "--t",
                "0,5ms,10ms",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    for name in (
        "pacelc-model.md",
        "pacelc-store.md",
        "pacelc.md",
        "pacelc.json",
        "t_visibility.png",
        "t_visibility.svg",
        "tradeoff.png",
        "index.html",
    ):
        assert (tmp_path / name).exists(), name
    page = (tmp_path / "index.html").read_text()
    assert "The model (N/R/W" in page and "capsim&#x27;s store" in page and "FIFO links" in page


def test_pacelc_wars_json_has_one_row_per_point(capsys):
    """--wars --json: one row per (N, R, W, t) with n, r, w, t_ms, p_stale, se; capsim within 4 s.e. of the model."""
    assert (
        main(
            [
                "pacelc",
                "--wars",
                "--quorums",
                "3/1/1,5/2/2",
                "--t",
                "0,1ms,5ms",
                "--trials",
                "300",
                "--model-trials",
                "20000",
                "--latency",
                "exponential:5ms",
                "--jobs",
                "1",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [(r["n"], r["r"], r["w"], r["t_ms"]) for r in rows] == [
        (3, 1, 1, 0),
        (3, 1, 1, 1),
        (3, 1, 1, 5),
        (5, 2, 2, 0),
        (5, 2, 2, 1),
        (5, 2, 2, 5),
    ]
    for row in rows:
        assert {"n", "r", "w", "t_ms", "p_stale", "se"} <= set(row) and row["trials"] == 300
        assert row["se"] == pytest.approx((row["p_stale"] * (1 - row["p_stale"]) / 300) ** 0.5)
        assert abs(row["z"]) <= 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--latency", "exponential:5"], "--latency: '5' in 'exponential:5' needs a unit"),
        (["--latency", "gaussian:1ms"], "unknown latency distribution 'gaussian'"),
        (["--quorums", "3/4/1"], "--quorums: a quorum needs 1 <= R <= N"),
        (["--t", "0,5"], "--t: '5' is not a duration"),
        # a leading minus was argparse's "expected one argument"
        (["--t", "-1ms"], "--t: t must be 0 or more (a time after the write), got '-1ms'"),
        (["--t", "-.5ms"], "--t: t must be 0 or more"),
        (["--t", "0,-1ms"], "--t: t must be 0 or more"),
        (["--t=-1ms"], "--t: t must be 0 or more"),
        # --legs: a leg capsim cannot run, and a leg it cannot read
        (["--legs", "ymmr"], "--legs ymmr: capsim runs WARS with one latency per link direction"),
        (["--legs", "w=1ms"], "--legs: w: "),
        # an empty list (an unset shell variable, say) ran the whole default sweep
        (["--quorums", ""], "--quorums: give one or more N/R/W"),
        (["--t", " "], "--t: give one or more times"),
        # a point given twice was run twice and printed twice
        (["--quorums", "3/1/1,5/2/2,3/1/1"], "--quorums: 3/1/1 is given twice"),
        (["--t", "1ms,5ms,0.001s"], "--t: 1 ms is given twice"),
        # a cluster that cannot fit in memory was started anyway
        (["--quorums", "3/1/1,100000/1/1"], "--quorums 100000/1/1: 100000 nodes"),
    ],
)
def test_pacelc_usage_errors_exit_2_in_one_line(capsys, args, message):
    """A bad latency, quorum or time list is one line on stderr and exit 2, before any run."""
    assert main(["pacelc", "--wars", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", [["--out", "REPORT"], ["--markdown"]])
def test_pacelc_wars_refuses_a_report_it_would_not_write(tmp_path, capsys, flag):
    """--wars with --out made an empty directory, and with --markdown printed a terminal table: exit 2 saying so."""
    flag = [str(tmp_path / "report") if f == "REPORT" else f for f in flag]
    assert main(["pacelc", "--wars", "--quorums", "3/1/1", "--trials", "10", *flag]) == 2
    err = capsys.readouterr().err
    assert f"leave out {flag[0]}, or --wars" in err and "Traceback" not in err
    assert not (tmp_path / "report").exists()


def test_pacelc_refuses_json_with_markdown_rather_than_drop_one(capsys):
    """--json --markdown printed the JSON and dropped the Markdown without a word: exit 2 naming both."""
    with pytest.raises(SystemExit) as exit_info:
        main(["pacelc", "--quorums", "3/1/1", "--json", "--markdown"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --markdown: not allowed with argument --json" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, hint",
    [
        (["--trials", "100000000", "--quorums", "3/1/1"], "pass --trials "),
        (["--trials", "100000000", "--quorums", "3/1/1", "--wars"], "pass --trials "),
        (["--model-trials", "100000000000", "--quorums", "3/1/1"], "pass --model-trials "),
    ],
)
def test_pacelc_refuses_trials_the_machine_cannot_hold_before_any_run(capsys, monkeypatch, args, hint):
    """--trials 10**8 grew by 11 MB/s until it was killed: now one line, the estimate and what to pass, exit 2."""
    import capsim.commands.pacelc as command

    def never(*_):
        raise AssertionError("a run started")

    monkeypatch.setattr(command, "run_job", never)
    monkeypatch.setattr(command, "wars_job", never)
    assert main(["pacelc", *args, "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "GB of memory" in err and "GB available" in err and hint in err


def test_pacelc_shows_trials_moving_on_stderr(capsys, monkeypatch):
    """Off a terminal, a line of trials done (of all of them) and the time left, while one configuration runs."""
    import capsim.commands.pacelc as command
    from capsim.parallel import ProgressLines

    monkeypatch.setattr(ProgressLines, "every", 0.0)
    monkeypatch.setattr(command, "POLL", 0.01)
    args = ["pacelc", "--quorums", "3/1/1", "--trials", "400", "--model-trials", "1000", "--t", "0,1ms"]
    assert main([*args, "--jobs", "1", "--json"]) == 0
    captured = capsys.readouterr()
    total = 400 + 2 * 2 * 400
    done = [
        int(line.split()[2].replace(",", ""))
        for line in captured.err.splitlines()
        if line.startswith("capsim: trials ") and f"of {total:,}" in line
    ]
    assert any(0 < d < total for d in done), captured.err
    assert done == sorted(done) and "left" in captured.err
    rows = json.loads(captured.out)
    assert main([*args, "--jobs", "2", "--json"]) == 0  # the same figures whatever the workers
    assert json.loads(capsys.readouterr().out) == rows


def test_pacelc_says_how_long_a_long_run_will_take(capsys, monkeypatch):
    """A run estimated past SAY_ESTIMATE_AFTER says so, with its trials, before it starts."""
    import capsim.commands.pacelc as command

    monkeypatch.setattr(command, "SAY_ESTIMATE_AFTER", 0.0)
    assert (
        main(["pacelc", "--quorums", "3/2/2", "--trials", "5", "--model-trials", "100", "--t", "0", "--jobs", "1"]) == 0
    )
    assert "capsim pacelc: 10 trials on capsim, about 0 s with 1 worker" in capsys.readouterr().err


def test_the_bar_counts_the_model_s_trials_too(capsys, monkeypatch):
    """The WARS model's trials move a second count (the bar paused through the model, ~34 s a quorum at N=200)."""
    import capsim.commands.pacelc as command
    from capsim.parallel import ProgressLines

    monkeypatch.setattr(ProgressLines, "every", 0.0)
    monkeypatch.setattr(command, "POLL", 0.01)
    args = ["pacelc", "--wars", "--quorums", "3/1/1", "--trials", "20", "--model-trials", "60000", "--t", "0"]
    assert main([*args, "--jobs", "1", "--json"]) == 0
    model = [
        int(line.split("model trials ")[1].split()[0].replace(",", ""))
        for line in capsys.readouterr().err.splitlines()
        if "model trials " in line and "of 60,000" in line
    ]
    assert any(0 < done < 60_000 for done in model) and model == sorted(model)


def test_a_spawned_worker_reports_to_the_same_counters(tmp_path):
    """A replacement worker is spawned, so it inherits no mapping: it opens the counters' file by its path."""
    import multiprocessing
    import struct

    import capsim.commands.pacelc as command
    import emulator as em

    path = tmp_path / "counts"
    path.write_bytes(bytes(32))
    job = ((3, 1, 1), (0, 1), em.Exponential(0.002), 7, 2500, 1)
    worker = multiprocessing.get_context("spawn").Process(
        target=command._counted, args=((command.wars_job, 1, job, str(path)),)
    )
    worker.start()
    worker.join(120)
    assert worker.exitcode == 0
    assert struct.unpack("4q", path.read_bytes()) == (0, 0, 2 * 7, 2500)
