"""Tests of capsim/commands/check.py: ``capsim check`` exit codes and output."""

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from capsim.cli import main
from tests.common.check_histories import KNOSSOS_DIR, KV_DIR, KV_VERDICTS

GOOD = [
    {"process": 0, "type": "invoke", "f": "write", "key": "a", "value": 1},
    {"process": 0, "type": "ok", "f": "write", "key": "a", "value": 1},
    {"process": 1, "type": "invoke", "f": "read", "key": "a", "value": None},
    {"process": 1, "type": "ok", "f": "read", "key": "a", "value": 1},
]
BAD = GOOD[:3] + [{"process": 1, "type": "ok", "f": "read", "key": "a", "value": None}]


def _jsonl(tmp_path, name, ops):
    path = tmp_path / name
    path.write_text("".join(json.dumps(op) + "\n" for op in ops))
    return str(path)


def test_a_history_of_failures_alone_is_linearizable_as_knossos_says(tmp_path, capsys):
    """No ok op: nothing to order, so linearizable, exit 0, as Knossos calls it valid (vacuously). capsim cap and
    chaos say unknown for such a run, and name this behaviour and Jepsen's stats checker's (invalid) as theirs."""
    failed = [{**GOOD[0]}, {**GOOD[1], "type": "fail"}, {**GOOD[2]}, {**GOOD[3], "type": "fail", "value": None}]
    assert main(["check", "--model", "register", _jsonl(tmp_path, "fails.jsonl", failed)]) == 0
    out = capsys.readouterr().out
    assert " linearizable" in out and "NOT" not in out
    from capsim.cap.metrics import FIGURES

    (linearizable,) = [text for key, _, text in FIGURES if key == "linearizable"]
    assert "Knossos, like capsim check, calls such a history linearizable, vacuously" in linearizable
    assert "Jepsen's stats checker calls it invalid" in linearizable


def test_a_linearizable_file_exits_zero_with_one_line(tmp_path, capsys):
    """One file, linearizable: exit 0 and one verdict line with ops, keys (not "partitions") and time."""
    path = _jsonl(tmp_path, "good.jsonl", GOOD)
    assert main(["check", "--model", "register", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith(path) and "2 ops" in out[0] and "  1 key " in out[0] and "partition" not in out[0]
    assert "linearizable" in out[0] and out[0].endswith(" s")


def test_a_non_linearizable_file_exits_one(tmp_path, capsys):
    """A violation exits 1 and says NOT linearizable."""
    assert main(["check", "--model", "cas-register", _jsonl(tmp_path, "bad.jsonl", BAD)]) == 1
    assert "NOT linearizable" in capsys.readouterr().out


def test_explain_prints_why(tmp_path, capsys):
    """--explain adds the explanation under a failing file's line."""
    main(["check", "--model", "register", "--explain", _jsonl(tmp_path, "bad.jsonl", BAD)])
    assert "it returned null but after the prefix the value was 1" in capsys.readouterr().out


def _unwritten_read() -> list[dict]:
    """14 overlapping writes, then p99 reads 77, which p98 writes only after: too many orders for a first turn."""
    ops = [{"process": p, "type": "invoke", "f": "write", "value": p} for p in range(14)]
    ops += [{"process": p, "type": "ok", "f": "write", "value": p} for p in range(14)]
    for process, f, value, out in ((99, "read", None, 77), (98, "write", 77, 77)):
        ops += [{"process": process, "type": "invoke", "f": f, "value": value}]
        ops += [{"process": process, "type": "ok", "f": f, "value": out}]
    return ops


def test_explain_and_html_name_the_read_of_a_value_no_op_could_have_written(tmp_path, capsys):
    """A read of a value whose only write came after it: --explain names the read, its value and that write, and
    the --html page outlines both."""
    path = _jsonl(tmp_path, "unwritten.jsonl", _unwritten_read())
    assert main(["check", "--model", "register", "--explain", "--html", str(tmp_path / "html"), path]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "p99 read() -> 77 [28..29] returned 77, not the initial value, and no op that could leave it (a write or "
        "put of it) was invoked before the read returned; the first that could, p98 write(77) -> ok [30..31], was "
        "invoked after it returned: the read is impossible in every order, so none exists"
    ) in out
    page = (tmp_path / "html" / "unwritten.jsonl.html").read_text()
    assert page.count(" witness") == 2 and "returned 77, not the initial value" in page


def test_an_unreadable_file_exits_two_without_a_traceback(tmp_path, capsys):
    """Junk gives 'capsim check: error: <file>: <message>' on stderr and exit 2; other files still run."""
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    good = _jsonl(tmp_path, "good.jsonl", GOOD)
    assert main(["check", "--model", "register", str(junk), good]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"capsim check: error: {junk}: line 1: expected a history")
    assert "Traceback" not in captured.err and "linearizable" in captured.out


def test_a_missing_file_exits_two(tmp_path, capsys):
    """A file that does not exist is an input error."""
    assert main(["check", str(tmp_path / "nope.edn")]) == 2
    assert capsys.readouterr().err == f"capsim check: error: {tmp_path / 'nope.edn'}: No such file or directory\n"


def test_an_op_outside_the_model_exits_two(tmp_path, capsys):
    """A cas under --model register is reported as an error, not a crash."""
    ops = [{"process": 0, "type": "invoke", "f": "cas", "value": [1, 2]}]
    assert main(["check", "--model", "register", _jsonl(tmp_path, "cas.jsonl", ops)]) == 2
    assert "has no operation 'cas'" in capsys.readouterr().err


def test_a_violation_outranks_an_unreadable_file(tmp_path, capsys):
    """With one bad and one unreadable file the exit status is 1."""
    junk = tmp_path / "junk.txt"
    junk.write_text("{:process}\n")
    assert main(["check", "--model", "register", _jsonl(tmp_path, "bad.jsonl", BAD), str(junk)]) == 1


def _hard(writers: int) -> list[dict]:
    """Overlapping writes, then reads of 0 and of 1: no order, found only by a search of the writes' orders."""
    ops = [{"process": p, "type": "invoke", "f": "write", "value": p} for p in range(writers)]
    ops += [{"process": p, "type": "ok", "f": "write", "value": p} for p in range(writers)]
    for process, seen in ((98, 0), (99, 1)):
        ops += [{"process": process, "type": "invoke", "f": "read"}]
        ops += [{"process": process, "type": "ok", "f": "read", "value": seen}]
    return ops


def test_a_timeout_gives_unknown_and_exit_two(tmp_path, capsys):
    """A history that cannot be decided in time exits 2 with 'unknown'."""
    ops = _hard(14)
    assert main(["check", "--model", "register", "--timeout", "0.001", _jsonl(tmp_path, "hard.jsonl", ops)]) == 2
    assert "unknown" in capsys.readouterr().out


def test_a_step_budget_gives_unknown_the_same_in_two_processes_with_other_hash_seeds(tmp_path):
    """--steps: a history that needs more steps exits 2 with 'unknown' and says which budget ran out; the
    explanation (how far the search got) is the same in processes with other hash seeds, and enough steps decide it."""
    ops = _hard(14)
    hard = _jsonl(tmp_path, "hard.jsonl", ops)

    def check(steps: str, seed: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "capsim", "check", "--model", "register", "--steps", steps, "--explain", hard]
        env = {**os.environ, "PYTHONHASHSEED": seed}
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd=Path(__file__).parents[3])

    runs = [check("20_000", seed) for seed in ("1", "2")]
    assert [r.returncode for r in runs] == [2, 2], runs[0].stderr
    explained = [r.stdout.split("\n", 2)[2] for r in runs]  # the verdict and summary lines hold the time taken
    assert "step budget of 20,000 steps ran out" in explained[0] and explained[0] == explained[1]
    assert check("100000000", "1").returncode == 1  # the reads of 0 and then 1 have no order


@pytest.mark.parametrize("steps", ["0", "-3", "1.5", "many"])
def test_a_step_budget_that_is_not_a_positive_whole_number_is_refused(steps, capsys):
    """--steps takes a positive whole number; anything else is exit 2 saying so, before any file is read."""
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--steps", steps, "never-read.jsonl"])
    assert exit_.value.code == 2 and "--steps" in capsys.readouterr().err


def test_no_split_checks_the_history_whole(tmp_path, capsys):
    """--no-split reports the file as unsplit."""
    assert main(["check", "--model", "register", "--no-split", _jsonl(tmp_path, "good.jsonl", GOOD)]) == 0
    assert "unsplit" in capsys.readouterr().out


def test_html_writes_one_timeline_per_file(tmp_path, capsys):
    """--html DIR writes DIR/<file>.html for each file checked."""
    out_dir = tmp_path / "html"
    path = _jsonl(tmp_path, "bad.jsonl", BAD)
    assert main(["check", "--model", "register", "--html", str(out_dir), path]) == 1
    assert "NOT linearizable" in (out_dir / "bad.jsonl.html").read_text()


def test_html_timelines_of_files_with_one_name_do_not_overwrite_each_other(tmp_path):
    """a/h.jsonl and b/h.jsonl wrote one h.jsonl.html, b's over a's; the second is h.jsonl-2.html."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad, good = _jsonl(tmp_path / "a", "h.jsonl", BAD), _jsonl(tmp_path / "b", "h.jsonl", GOOD)
    out_dir = tmp_path / "html"
    assert main(["check", "--model", "register", "--html", str(out_dir), bad, good]) == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["h.jsonl-2.html", "h.jsonl.html"]
    assert "NOT linearizable" in (out_dir / "h.jsonl.html").read_text()
    assert "NOT linearizable" not in (out_dir / "h.jsonl-2.html").read_text()


@pytest.mark.skipif(not KV_DIR.is_dir(), reason=f"shared kv histories not found at {KV_DIR}")
def test_shared_histories_through_the_command_line(capsys):
    """The four shared kv histories: exit 1 overall, one line each with the right verdict."""
    paths = [str(KV_DIR / f"{name}.edn") for name in ("c01-ok", "c01-bad", "c10-ok", "c10-bad")]
    assert main(["check", *paths]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert ["NOT linearizable" in line for line in lines] == [False, True, False, True]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "queue"], "invalid choice: 'queue' (choose from register, cas-register"),
        (["--timeout", "-1"], "positive"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path, capsys, argv, message):
    """Unknown models and non-positive timeouts are rejected by the parser (exit 2)."""
    with pytest.raises(SystemExit) as info:
        main(["check", *argv, _jsonl(tmp_path, "good.jsonl", GOOD)])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_a_jepsen_log_checks_as_a_cas_register(tmp_path, capsys):
    """A Jepsen etcd-style console log reads and checks under --model cas-register."""
    log = tmp_path / "etcd.log"
    log.write_text(
        "INFO  jepsen.util - 0\t:invoke\t:write\t3\n"
        "INFO  jepsen.util - 1\t:invoke\t:cas\t[1 4]\n"
        "INFO  jepsen.util - 0\t:ok\t:write\t3\n"
        "INFO  jepsen.util - 1\t:fail\t:cas\t[1 4]\n"
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 1]\n"
        "INFO  jepsen.util - 2\t:info\t:cas\t:timed-out\n"
        "INFO  jepsen.util - 3\t:invoke\t:read\tnil\n"
        "INFO  jepsen.util - 3\t:ok\t:read\t1\n"
    )
    assert main(["check", "--model", "cas-register", str(log)]) == 0
    assert "4 ops" in capsys.readouterr().out


def test_the_readme_example_runs_on_the_shipped_histories(capsys):
    """README: capsim check --example ... works after a plain install, one line each, right verdicts."""
    from emulator.check import examples

    argv = ["check"] + [a for e in examples.EXAMPLES for a in ("--example", e.name)]
    assert main(argv) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [("NOT linearizable" not in line) for line in lines] == [e.valid for e in examples.EXAMPLES]


def test_examples_are_listed_with_their_verdicts(capsys):
    """--examples lists every shipped history, its format and its verdict."""
    from emulator.check import examples

    assert main(["check", "--examples"]) == 0
    out = capsys.readouterr().out
    assert all(e.name in out for e in examples.EXAMPLES) and "edn-vector" in out


def test_an_unknown_example_is_an_error_naming_the_examples(capsys):
    """--example with a wrong name exits 2 and lists the names."""
    assert main(["check", "--example", "nope"]) == 2
    assert "no example 'nope'; the examples are: capsim-lin-kv-partitions-good" in capsys.readouterr().err


def test_capsims_own_history_is_checked_without_a_model(capsys):
    """A history written by capsim chaos picks cas-register by itself."""
    assert main(["check", "--example", "capsim-lin-kv-partitions-good"]) == 0
    assert "model cas-register (detected)  linearizable" in capsys.readouterr().out


def test_a_model_mismatch_names_the_model_to_use(capsys):
    """kv on capsim's integer values says which model fits."""
    assert main(["check", "--model", "kv", "--example", "capsim-split-brain-bad"]) == 2
    assert "use model 'cas-register', or leave the model out to detect it" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["cas_register", "cas-register", "knossos_cas_register", "knossos-cas-register"])
def test_model_names_are_accepted_with_dashes_or_underscores(capsys, name):
    """--model takes either spelling."""
    assert main(["check", "--model", name, "--example", "knossos-cas-register-bug-good"]) == 0


def test_a_long_check_shows_progress_on_stderr(tmp_path, capsys, monkeypatch):
    """Past PROGRESS_AFTER seconds, the check reports keys decided and configurations on stderr."""
    import capsim.commands.check as command

    monkeypatch.setattr(command, "PROGRESS_AFTER", 0.0)
    monkeypatch.setattr(command._Reporter, "__init__", _fast_reporter)
    ops = _hard(20)
    assert main(["check", "--model", "register", "--timeout", "0.5", _jsonl(tmp_path, "hard.jsonl", ops)]) == 2
    err = capsys.readouterr().err
    assert "hard.jsonl: 0 of 1 keys decided" in err and "configurations" in err


def _fast_reporter(self, name):
    self.name, self.tty, self.every, self.shown = name, False, 0.05, False


def test_the_readme_check_commands_run_as_written(tmp_path, capsys, monkeypatch):
    """Every `capsim check --example...` line in the README runs after a plain install and gives its verdict."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    commands = [line.split()[1:] for line in readme.splitlines() if line.strip().startswith("capsim check --example")]
    assert len(commands) == 3
    statuses = []
    for argv in commands:
        argv = [str(tmp_path / "html") if a == "/tmp/timelines" else a for a in argv]
        statuses.append(main(argv))
    assert statuses == [0, 1, 1]
    out = capsys.readouterr().out
    assert (
        "knossos-bad-analysis-bad" in out
        and "p21 read() -> 2 [13..14]: it returned 2 but after the prefix the value was 1" in out
    )
    assert (tmp_path / "html" / "capsim-split-brain-bad.jsonl.html").exists()


def test_an_html_directory_that_cannot_be_written_is_refused_before_checking(tmp_path, capsys):
    """--html naming a file: one line and exit 2, before any history is checked."""
    taken = tmp_path / "taken"
    taken.write_text("")
    assert main(["check", "--html", str(taken), "--example", "capsim-lin-kv-partitions-good"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--html" in captured.err and captured.err.count("\n") == 1


def test_a_history_keyed_by_json_objects_is_checked(tmp_path, capsys):
    """Keys that are JSON objects are keys (no traceback): a stale read of one is found."""
    ops = [{**op, "key": {"table": "t", "row": 1}} for op in BAD]
    assert main(["check", "--model", "register", "--explain", _jsonl(tmp_path, "objects.jsonl", ops)]) == 1
    captured = capsys.readouterr()
    assert "NOT linearizable" in captured.out and captured.err == ""
    assert 'key {"table": "t", "row": 1}: 1 of 2 ops linearized' in captured.out


@pytest.mark.skipif(not KNOSSOS_DIR.is_dir(), reason=f"shared Knossos histories not found at {KNOSSOS_DIR}")
def test_every_shared_history_gets_its_known_verdict_and_exit_status(capsys):
    """Each shared Knossos and kv file alone: its folder's (or README's) verdict, exit 0 or 1, nothing on stderr."""
    known = [(path, path.parent.name == "good") for path in sorted(KNOSSOS_DIR.glob("*/*.edn"))]
    known += [(KV_DIR / f"{name}.edn", valid) for name, valid in KV_VERDICTS.items()]
    assert len(known) == 9
    for path, valid in known:
        assert main(["check", str(path)]) == (0 if valid else 1), path
        captured = capsys.readouterr()
        word = "  linearizable " if valid else "  NOT linearizable "
        assert word in captured.out and captured.err == "", path


def test_a_gzipped_history_is_checked(capsys):
    """capsim check reads Porcupine's gzipped c50-bad as it is, and refutes it."""
    path = Path(__file__).resolve().parents[2] / "emulator" / "check" / "data" / "porcupine" / "c50-bad.txt.gz"
    assert main(["check", str(path)]) == 1
    assert "NOT linearizable" in capsys.readouterr().out


class _Stdin:
    """A stand-in for sys.stdin whose .buffer holds ``data``."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)
        self.buffer.name = "<stdin>"


def test_a_history_on_standard_input_is_checked_as_a_file_named_dash(tmp_path, capsys, monkeypatch):
    """`capsim check -` reads the history from standard input: its verdict, exit status and --html timeline."""
    monkeypatch.setattr(sys, "stdin", _Stdin("".join(json.dumps(op) + "\n" for op in BAD).encode()))
    assert main(["check", "--model", "register", "--html", str(tmp_path), "-"]) == 1
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("-") and "NOT linearizable" in line
    assert "NOT linearizable" in (tmp_path / "stdin.html").read_text()


def test_standard_input_that_is_not_a_history_is_an_error_naming_it(capsys, monkeypatch):
    """Bytes on stdin that are no history: exit 2, one line naming standard input, no traceback."""
    monkeypatch.setattr(sys, "stdin", _Stdin(b"\xff\xfe not text"))
    assert main(["check", "-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("capsim check: error: -: ") and "UTF-8" in err and "Traceback" not in err


def test_standard_input_given_twice_is_refused_before_reading_it(capsys, monkeypatch):
    """`capsim check - -` cannot read stdin twice: a usage error, and stdin is left unread."""
    stdin = _Stdin(json.dumps(GOOD[0]).encode())
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["check", "-", "-"]) == 2
    assert "can be read once" in capsys.readouterr().err and stdin.buffer.tell() == 0


def test_a_history_piped_into_the_command_is_checked(tmp_path):
    """The real pipe: `... | python -m capsim check -`, a gzipped history as Porcupine ships some."""
    data = gzip.compress("".join(json.dumps(op) + "\n" for op in GOOD).encode())
    out = subprocess.run(
        [sys.executable, "-m", "capsim", "check", "-"], input=data, capture_output=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().startswith("-") and b" linearizable" in out.stdout


def test_a_step_budget_is_checked_between_turns_of_1024_steps(tmp_path, capsys):
    """--help says the budget is checked between turns of 1,024 steps of one key: a history that one turn decides
    is decided with --steps 1, and one that needs more than a turn is unknown with --steps 1."""
    ops = [
        {"process": 0, "type": "invoke", "f": "write", "value": 1},
        {"process": 0, "type": "ok", "f": "write", "value": 1},
    ]
    ops += [{"process": 1, "type": "invoke", "f": "read"}, {"process": 1, "type": "ok", "f": "read", "value": 1}]
    assert main(["check", "--model", "register", "--steps", "1", _jsonl(tmp_path, "easy.jsonl", ops)]) == 0
    hard = _hard(14)
    assert main(["check", "--model", "register", "--steps", "1", _jsonl(tmp_path, "hard.jsonl", hard)]) == 2
    assert "unknown" in capsys.readouterr().out


def test_a_lone_surrogate_in_a_value_is_explained_and_drawn_not_a_traceback(tmp_path):
    """JSON's "\\ud800" reads as a lone surrogate, which UTF-8 cannot encode: --explain and --html died with a
    UnicodeEncodeError, exit 1 (the exit of a history that is not linearizable). Now both print it as an escape."""
    history = tmp_path / "s.jsonl"
    history.write_text(
        '{"process": 0, "type": "invoke", "f": "read", "value": null}\n'
        '{"process": 0, "type": "ok", "f": "read", "value": "\\ud800"}\n'
    )
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    argv = [sys.executable, "-m", "capsim", "check", "--explain", "--html", str(tmp_path / "html"), str(history)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert 'it returned "\\ud800" but after the prefix the value was null' in done.stdout
    assert "\\ud800" in (tmp_path / "html" / "s.jsonl.html").read_text(encoding="utf-8")


def test_a_time_too_large_for_a_float_exits_two_naming_the_line(tmp_path, capsys):
    """A 400-digit :time was an OverflowError traceback with exit 1 (NOT linearizable): it is unreadable, exit 2."""
    history = tmp_path / "h.edn"
    history.write_text("{:process 0, :type :invoke, :f :write, :value 1, :time " + "1" * 400 + "}\n")
    assert main(["check", str(history)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{history}: line 1: expected a :time in nanoseconds that a float holds" in err


def test_an_edn_fail_whose_value_is_not_its_invokes_exits_two_naming_its_line(tmp_path, capsys):
    """Knossos refuses a :fail whose value is not its invoke's; capsim check says so in one line, exit 2."""
    path = tmp_path / "h.edn"
    path.write_text(
        "{:process 0, :type :invoke, :f :write, :value 3}\n{:process 1, :type :invoke, :f :read, :value nil}\n"
        "{:process 0, :type :fail, :f :write, :value 4}\n{:process 1, :type :ok, :f :read, :value nil}\n"
    )
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"capsim check: error: {path}: line 3: expected a :fail with its invoke's value, 3, not 4 (Knossos refuses "
        "a failure whose value is not its invocation's), found {:process 0, :type :fail, :f :write, :value 4}\n"
    )


def test_examples_with_a_file_is_refused_not_ignored(tmp_path, capsys):
    """--examples beside a FILE or --example: exit 2 and one line saying --examples checks nothing."""
    path = _jsonl(tmp_path, "good.jsonl", GOOD)
    for argv in (["check", "--examples", path], ["check", "--examples", "--example", "capsim-split-brain-bad"]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1 and "--examples only lists the shipped histories" in captured.err


def test_a_bad_line_is_shown_as_written_with_its_number(tmp_path, capsys):
    """A completion with no invoke: the message shows the line's own text, not the op as a Python dict."""
    path = tmp_path / "okonly.jsonl"
    path.write_text('{"process":0,"type":"ok","f":"read","value":null,"time":0}\n')
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"capsim check: error: {path}: line 1: expected an invoke of process 0 before its ok, "
        'found {"process":0,"type":"ok","f":"read","value":null,"time":0}\n'
    )


def test_a_long_bad_line_is_cut_to_80_characters(tmp_path, capsys):
    """The line shown is cut at 80 characters, with ..., so one long op does not fill the screen."""
    path = tmp_path / "long.jsonl"
    line = json.dumps({"process": 0, "type": "ok", "f": "read", "value": "v" * 500})
    path.write_text(line + "\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("found " + line[:77] + "...\n")


def test_a_history_that_cannot_fit_in_memory_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    """A file whose estimate exceeds the memory available: exit 2, one line with the need and what to do."""
    from capsim import limits

    path = _jsonl(tmp_path, "h.jsonl", GOOD * 100)
    monkeypatch.setattr(limits, "available_mb", lambda: 10.0)
    assert main(["check", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"{path}: its 400 lines" in captured.err and "check a part of it" in captured.err


def test_memory_running_out_is_one_line_and_exit_2_never_1(tmp_path, capsys, monkeypatch):
    """A MemoryError while reading or checking: exit 2 (unknown, not "not linearizable"), one line naming memory."""
    import capsim.commands.check as command

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(command, "linearizable", out_of_memory)
    good = _jsonl(tmp_path, "good.jsonl", GOOD)
    assert main(["check", good]) == 2
    err = capsys.readouterr().err
    assert err == f"capsim check: error: {good}: {command._OUT_OF_MEMORY}\n" and "memory ran out" in err


def test_memory_running_out_for_real_on_standard_input_exits_2(tmp_path):
    """Under an address-space limit, a history on stdin (no size known beforehand) that does not fit: exit 2 and
    one line, no traceback."""
    path = _jsonl(tmp_path, "big.jsonl", [{**op, "key": i} for i in range(50_000) for op in GOOD])
    code = (
        "import resource, sys\n"
        "from capsim.cli import main\n"
        "import capsim.commands.check, emulator.check.readers, emulator.check.linearizable\n"
        "vm = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize:')][0]\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 150 * 2**20, resource.RLIM_INFINITY))\n"
        "sys.exit(main(['check', '-']))\n"
    )
    with open(path, "rb") as stdin:
        run = subprocess.run([sys.executable, "-c", code], stdin=stdin, capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert run.stdout == "" and run.stderr.count("\n") == 1 and "memory ran out" in run.stderr


def test_a_file_too_large_under_ulimit_is_refused_in_one_line(tmp_path):
    """Under an address-space limit (ulimit -v) a named file too large for it is refused before it is read."""
    path = _jsonl(tmp_path, "big.jsonl", [{**op, "key": i} for i in range(50_000) for op in GOOD])
    code = (
        "import resource, sys\n"
        "from capsim.cli import main\n"
        "vm = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize:')][0]\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 150 * 2**20, resource.RLIM_INFINITY))\n"
        "sys.exit(main(['check', sys.argv[1]]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "its 200,000 lines" in run.stderr and "head -n " in run.stderr


def test_a_file_is_paired_once_for_reading_and_checking(tmp_path, monkeypatch):
    """The reader pairs the ops to check them, and the checker takes that pairing rather than pairing again."""
    from emulator.check import ops

    calls = []
    pair = ops._pair
    monkeypatch.setattr(ops, "_pair", lambda *args: calls.append(1) or pair(*args))
    assert main(["check", _jsonl(tmp_path, "good.jsonl", GOOD)]) == 0
    assert len(calls) == 1
