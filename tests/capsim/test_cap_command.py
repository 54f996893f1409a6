"""capsim cap and capsim pacelc from the command line: table, JSON, report, seeds, errors."""

import json
import re

from capsim.cli import main
from tests.common.browser import dump_dom

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
    assert list(rows[0])[:10] == ["config", "availability", "availability_minority", "availability_majority",
                                  "linearizable", "stale_read_fraction", "lost_writes", "p50_ms", "p99_ms",
                                  "convergence_s"]


def test_cap_report_opens_in_headless_chromium(tmp_path, capsys):
    """--out writes Markdown, JSON, plots and a page that Chromium renders with its table and timelines."""
    assert main(["cap", *SHORT, "--out", str(tmp_path)]) == 0
    for name in ("cap.md", "cap.json", "throughput.png", "latency.svg", "staleness.png", "index.html"):
        assert (tmp_path / name).exists(), name
    dom = dump_dom(tmp_path / "index.html")
    assert "CAP, measured" in dom and dom.count('class="run timeline"') == 3
    assert len(re.findall(r'<rect class="op ', dom)) > 100


def test_cap_seeds_report_distributions(capsys):
    """--seeds A-B gives each figure as a median and a range, and 'k/n yes' for linearizability."""
    assert main(["cap", *SHORT, "--seeds", "1-2", "--jobs", "1", "--config", "cp"]) == 0
    out = capsys.readouterr().out
    assert "2/2 yes" in out and re.search(r"\d+\.\d% \[\d+\.\d-\d+\.\d\]", out)


def test_cap_usage_errors_exit_2_without_a_traceback(capsys):
    """A bad timeline or configuration is reported in one line, exit status 2."""
    assert main(["cap", "--partition-at", "9", "--heal-at", "3"]) == 2
    assert main(["cap", "--config", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "partition-at < --heal-at" in err and "unknown configuration 'nosuch'" in err
    assert "Traceback" not in err


def test_pacelc_prints_the_closed_form_beside_the_measurement(capsys):
    """capsim pacelc --json: partial quorums carry the PBS formula, strict ones are never stale."""
    assert main(["pacelc", "--trials", "60", "--jobs", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {row["config"]: row for row in rows}
    assert by_name["N=3 R=1 W=1"]["pbs_closed_form"] == 2 / 3
    assert by_name["N=3 R=2 W=2"]["stale"] == 0
    assert {"p-r async", "p-r sync"} <= set(by_name)


def test_cap_refuses_settings_a_protocol_does_not_take_and_fails_on_protocol_errors(tmp_path, capsys):
    """A TOML config with a misspelt setting exits 2 naming it; one whose nodes raise exits 1."""
    typo = tmp_path / "typo.toml"
    typo.write_text('[[config]]\nname = "x"\nprotocol = "quorum"\nsettings = { sloppyy = true }\n')
    assert main(["cap", "--config", str(typo)]) == 2
    assert "unexpected keyword argument 'sloppyy'" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text('[[config]]\nname = "bad"\nprotocol = "primary-replica"\n'
                      'settings = { mode = "semi-sync", acks = 9 }\n')
    assert main(["cap", *SHORT, "--config", str(broken)]) == 1
    assert "error(s) in protocol code" in capsys.readouterr().out
