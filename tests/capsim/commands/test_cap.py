"""Tests of capsim/commands/cap.py: table, JSON, report, seeds, claims and errors."""

import json
import re

import pytest

from capsim.cli import main
from tests.common.browser import dump_dom
from tests.common.imports import modules_at_fork, modules_of

SHORT = ["--duration", "6", "--partition-at", "1.5", "--heal-at", "4.5"]


def test_cap_prints_a_row_per_configuration_and_the_json_has_the_keys(capsys):
    """The table names each configuration; --json lists the documented keys per configuration."""
    assert main(["cap", *SHORT]) == 0
    out = capsys.readouterr().out
    for name in ("cp", "ap", "async", "available, minority side", "acknowledged writes lost"):
        assert name in out
    assert main(["cap", *SHORT, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["config"] for row in rows] == ["cp", "ap", "async"]
    assert list(rows[0])[:11] == [
        "config",
        "availability",
        "availability_minority",
        "availability_majority",
        "linearizable",
        "stale_read_fraction",
        "lost_writes",
        "silently_overwritten",
        "p50_ms",
        "p99_ms",
        "convergence_s",
    ]


def test_cap_report_opens_in_headless_chromium(tmp_path, capsys):
    """--out writes Markdown, JSON, plots and a page that Chromium renders with its table and timelines."""
    assert main(["cap", *SHORT, "--out", str(tmp_path)]) == 0
    for name in ("cap.md", "cap.json", "throughput.png", "latency.svg", "staleness.png", "index.html"):
        assert (tmp_path / name).exists(), name
    dom = dump_dom(tmp_path / "index.html")
    assert "CAP, measured" in dom and dom.count('class="run timeline"') == 3
    assert len(re.findall(r'<rect class="op ', dom)) > 100


def test_the_default_cap_report_is_a_small_page(tmp_path, capsys):
    """The default run's page (three configurations, every op on the timeline) stays under 300 KB."""
    assert main(["cap", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "index.html").stat().st_size < 300_000


def test_cap_seeds_report_distributions(capsys):
    """--seeds A-B gives each figure as a median and a range, and 'k/n yes' for linearizability."""
    assert main(["cap", *SHORT, "--seeds", "1-2", "--jobs", "1", "--config", "cp"]) == 0
    out = capsys.readouterr().out
    assert "2/2 yes" in out and re.search(r"\d+\.\d% \[\d+\.\d-\d+\.\d\]", out)


def test_cap_markdown_has_the_table_the_command_and_the_definitions(capsys):
    """--markdown: the transposed table, the command that made it, and one definition per figure."""
    from capsim.cap.report import COLUMNS, SEEDS_NOTE

    assert main(["cap", *SHORT, "--seeds", "1-2", "--jobs", "1", "--config", "cp,ap", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("|  | cp | ap |")
    assert (
        "`capsim cap --seeds 1-2 --duration 6 --partition-at 1.5 --heal-at 4.5 --config cp,ap --markdown`. "
        + SEEDS_NOTE
    ) in out
    for column in COLUMNS:
        assert f"- **{column.label}**: {column.help}." in out
    # What the note says a cell holds, it holds: latency cells a median per phase, the verdict a count of seeds,
    # every other cell a median then [lowest-highest].
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in out.splitlines() if line.startswith("| ")
    }
    for column in COLUMNS:
        for cell in rows[column.label]:
            cell = cell.strip(" |")
            if column.key in ("p50_ms", "p99_ms"):
                assert re.fullmatch(r"[\d.]+/[\d.]+/[\d.]+", cell), (column.label, cell)
            elif column.key == "linearizable":
                assert re.fullmatch(r"\d+/2 yes", cell), cell
            else:
                assert re.fullmatch(r"[\d.]+%? \[[\d.]+-[\d.]+\]", cell), (column.label, cell)


def test_help_defines_every_figure(capsys):
    """capsim cap --help prints each figure's definition, word for word."""
    from capsim.cap.report import definitions

    with pytest.raises(SystemExit):
        main(["cap", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for line in definitions():
        assert " ".join(line.split()) in out


def test_cap_usage_errors_exit_2_without_a_traceback(capsys):
    """A bad timeline or configuration is reported in one line, exit status 2."""
    assert main(["cap", "--partition-at", "9", "--heal-at", "3"]) == 2
    assert main(["cap", "--config", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "partition-at < --heal-at" in err and "unknown configuration 'nosuch'" in err
    assert "Traceback" not in err


def test_a_partition_shorter_than_the_timeout_is_refused_with_the_shortest_that_measures_it(capsys):
    """A 50 ms cut printed cp's minority 100.0% available: every op it saw was answered after the heal, within its
    timeout. Now it is refused, exit 2, naming the shortest partition the figures can measure."""
    assert main(["cap", "--duration", "0.2", "--partition-at", "0.05", "--heal-at", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "the partition must last at least the clients' 0.5 s timeout, got 0.05 s" in err
    assert "use --heal-at 0.55 or later" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "body, message",
    [
        ("config = [1, 2]\n", "config #1: expected a [[config]] table, found 1"),  # was an AttributeError traceback
        # a misspelt key was ignored, and the run went on without the settings meant
        (
            '[[config]]\nname = "x"\nprotocol = "quorum"\nsetting = { sloppy = true }\n',
            "config #1: unknown key 'setting'",
        ),
        ('configs = 1\n[[config]]\nname = "x"\nprotocol = "quorum"\n', "unknown key 'configs'"),
    ],
)
def test_a_config_file_with_a_stray_value_or_key_exits_2_naming_it(tmp_path, capsys, body, message):
    """A [[config]] entry that is not a table, or a key a config file does not take: exit 2 with the file and key."""
    path = tmp_path / "configs.toml"
    path.write_text(body)
    assert main(["cap", *SHORT, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {message}" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "settings, message",
    [
        # a value the constructor refuses: the message named neither the file's config nor the setting's owner
        ('{ n = "three" }', "config 'q': QuorumKV n must be an int >= 1, got 'three'"),
        ("{ n = 3, r = 0, w = 0 }", "config 'q': QuorumKV r must be an int from 1 to n=3, got 0"),
        # N larger than the cluster ran, and printed 0.0% available on every row (R = W = 7 of 5 copies)
        ("{ n = 9, r = 7, w = 7 }", "config 'q': n0 refused it as it started: ConfigError: QuorumKV n=9 copies"),
        ("{ n = 9, r = 1, w = 1 }", "lower n (and r and w) to at most 5, or add servers"),
    ],
)
def test_a_config_file_whose_settings_its_protocol_refuses_exits_2_naming_the_config(
    tmp_path, capsys, settings, message
):
    """Settings a store refuses, on construction or as it starts, exit 2 before any run, naming the config."""
    path = tmp_path / "configs.toml"
    path.write_text(f'[[config]]\nname = "q"\nprotocol = "quorum"\nsettings = {settings}\n')
    assert main(["cap", *SHORT, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cap_refuses_seed_with_seeds_rather_than_ignore_one(capsys):
    """--seed N with --seeds A-B (--seeds used to win silently, --seed 3 ignored): exit 2, as capsim chaos does."""
    with pytest.raises(SystemExit) as exit_info:
        main(["cap", "--seed", "3", "--seeds", "1-2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seeds: not allowed with argument --seed" in err and "Traceback" not in err


def test_cap_seed_defaults_to_1_as_its_help_says(capsys):
    """Without --seed, the run is seed 1's (the reproducing command says --seed 1)."""
    assert main(["cap", *SHORT, "--config", "cp", "--markdown"]) == 0
    assert "capsim cap --seed 1 " in capsys.readouterr().out


@pytest.mark.parametrize("config", ["cp,cp", "cp,ap,cp"])
def test_cap_refuses_a_configuration_named_twice(capsys, config):
    """--config cp,cp printed two identical columns (and a sweep kept one of them): exit 2 naming it."""
    assert main(["cap", *SHORT, "--config", config]) == 2
    err = capsys.readouterr().err
    assert "--config names cp twice" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "option, value", [("--duration", "inf"), ("--duration", "0"), ("--rate", "-5"), ("--partition-at", "nan")]
)
def test_cap_refuses_a_time_or_rate_that_is_not_a_finite_number(capsys, option, value):
    """An infinite, NaN, zero or negative duration or rate is an argument error naming the option, exit 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["cap", option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: expected a finite number" in err and "Traceback" not in err


def test_cap_refuses_settings_a_protocol_does_not_take_and_fails_on_protocol_errors(tmp_path, capsys, monkeypatch):
    """A TOML config with a misspelt setting exits 2 naming it, and so does one its nodes refuse as they start;
    one whose nodes raise while they serve exits 1."""
    typo = tmp_path / "typo.toml"
    typo.write_text('[[config]]\nname = "x"\nprotocol = "quorum"\nsettings = { sloppyy = true }\n')
    assert main(["cap", "--config", str(typo)]) == 2
    assert "unexpected keyword argument 'sloppyy'" in capsys.readouterr().err
    refused = tmp_path / "refused.toml"
    refused.write_text(
        '[[config]]\nname = "bad"\nprotocol = "primary-replica"\nsettings = { mode = "semi-sync", acks = 9 }\n'
    )
    assert main(["cap", *SHORT, "--config", str(refused)]) == 2
    assert "config 'bad': n0 refused it as it started" in capsys.readouterr().err
    (tmp_path / "broken_store.py").write_text(
        "from nodes import SingleKV\n\n\nclass Broken(SingleKV):\n"
        "    async def handle_read(self, msg):\n        raise RuntimeError('boom')\n"
    )
    broken = tmp_path / "broken.toml"
    broken.write_text('[[config]]\nname = "bad"\nprotocol = "broken_store:Broken"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["cap", *SHORT, "--config", str(broken)]) == 1
    assert "error(s) in protocol code" in capsys.readouterr().out


def test_a_rate_the_clients_cannot_offer_is_said_not_silently_capped(capsys):
    """--rate far above what one-op-in-flight clients can offer prints what they offered instead."""
    assert (
        main(
            [
                "cap",
                "--duration",
                "2",
                "--partition-at",
                "0.5",
                "--heal-at",
                "1.5",
                "--rate",
                "100000",
                "--config",
                "cp",
            ]
        )
        == 0
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "note: the clients offered at most" in out and "not the 100,000 asked" in out
    assert main(["cap", "--duration", "2", "--partition-at", "0.5", "--heal-at", "1.5", "--config", "cp"]) == 0
    assert "note: the clients offered" not in capsys.readouterr().out


def test_cap_prints_each_claim_with_the_conditions_it_needs(capsys):
    """Under the table: every configuration's claim and its conditions (clocks, writers, leases, fencing)."""
    assert main(["cap", *SHORT, "--config", "cp,ap,async,quorum,sync"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for needed in (
        "cp: linearizable",
        "acks + 1 >= a majority and fencing on",
        "not leases",
        "quorum: no read misses a write acknowledged before it began",
        "R + W > N and not sloppy",
        "clocks in sync",
        "any number of writers per key",
        "(PC/EC)",
        "ap: answers on both sides",
        "hinted handoff or anti-entropy on",
        "async: fast",
        "Conditions: none",
        "sync: linearizable and loses nothing",
        "Conditions: fencing on",
    ):
        assert needed in out, needed
    with pytest.raises(SystemExit):
        main(["cap", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert help_text.count("Conditions:") == 6 and "clocks in sync" in help_text


def test_a_cap_sweep_forks_its_workers_holding_all_a_seed_imports():
    """The parent imports every module a seed needs (the configurations' protocols too) once, before it forks."""
    plan = ["--duration", "2", "--partition-at", "0.5", "--heal-at", "1"]
    [at_fork] = modules_at_fork("cap", "--seeds", "1-2", "--workers", "2", *plan)
    needed = modules_of(
        "from capsim.cap import Plan\nfrom capsim.commands.cap import run_seed\n"
        "run_seed(Plan(duration=2.0, partition_at=0.5, heal_at=1.0), None, 1)"
    )
    assert needed - at_fork == set()


def test_cap_refuses_json_with_markdown_rather_than_drop_one(capsys):
    """--json --markdown printed the JSON and dropped the Markdown without a word: exit 2 naming both."""
    with pytest.raises(SystemExit) as exit_info:
        main(["cap", *SHORT, "--json", "--markdown"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --markdown: not allowed with argument --json" in err and "Traceback" not in err


def test_settings_a_protocol_refuses_as_it_starts_are_a_usage_error_not_a_table(tmp_path, capsys):
    """semi-sync acks = 100 on 5 nodes: the whole table was printed ('linearizable: yes', 0% available) for a store
    whose every node had refused to start, then exit 1; now one line naming the configuration, exit 2, no table."""
    config = tmp_path / "acks.toml"
    config.write_text(
        '[[config]]\nname = "pr"\nprotocol = "primary-replica"\nsettings = { mode = "semi-sync", acks = 100 }\n'
    )
    assert main(["cap", "--config", str(config), "--duration", "2", "--partition-at", "0.5", "--heal-at", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "config 'pr': n0 refused it as it started: ConfigError: semi-sync acks=100 needs" in err
