"""The capsim command line: version, help, and errors without tracebacks."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import capsim.cli
from capsim import __version__
from capsim.cli import COMMANDS, build_parser, main
from tests.common.imports import modules_after


def test_version_prints_the_package_version(capsys):
    """capsim --version prints 'capsim <version>'."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"capsim {__version__}"


def test_no_command_is_a_mistake_of_one_line_naming_the_commands(capsys):
    """capsim alone: one line on stderr naming every command and --help, exit 2, as the README says of every mistake
    (it printed the 20-line usage block on stdout)."""
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("capsim: error: give a command: cap, pacelc, demo")
    assert "capsim --help" in err


def test_an_unknown_demo_is_a_usage_error_not_a_traceback(capsys):
    """capsim demo nosuch exits 2 with a message naming the demos."""
    assert main(["demo", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no demo called 'nosuch'" in err and "partition" in err and "Traceback" not in err


def test_python_dash_m_capsim_works():
    """python -m capsim --version runs the same entry point."""
    out = subprocess.run([sys.executable, "-m", "capsim", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("capsim ")


BINARY = bytes(range(256)) * 4  # not UTF-8 from byte 128 on


@pytest.mark.parametrize(
    "argv", [["chaos", "{f}"], ["cap", "--config", "{f}"], ["check", "{f}"]], ids=["chaos", "cap --config", "check"]
)
def test_a_binary_file_given_as_toml_is_one_line_and_exit_2(tmp_path, capsys, argv):
    """A binary file where a TOML (or history) file belongs: one line naming the file, exit 2, no traceback."""
    path = tmp_path / "random.toml"
    path.write_bytes(BINARY)
    assert main([a.format(f=path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "UTF-8" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["cap", "--nodes", "x"],
        ["serve", "--protocol"],
        ["chaos"],
        ["nosuch"],
        ["cluster"],
        ["cluster", "up", "--nodes", "many"],
        ["demo", "--seed", "one"],
        ["check", "--model", "nosuch", "f"],
        ["pacelc", "--trials", "0"],
    ],
)
def test_an_argument_error_is_one_line_naming_the_help(capsys, argv):
    """A mistake in the arguments prints one line (no usage block) that points at --help, and exits 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "error:" in err and "--help)" in err and not err.startswith("usage")


def test_every_command_help_ends_with_its_exit_statuses(capsys):
    """capsim COMMAND --help lists every exit status of that command, common ones included."""
    from capsim.cli import COMMANDS, COMMON_EXIT_STATUS, EXIT_STATUS

    for command in COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        statuses = {**COMMON_EXIT_STATUS, **EXIT_STATUS[command]}
        for code, meaning in statuses.items():
            assert f"{code} {' '.join(meaning.split())}" in text, (command, code)


def test_every_command_help_fits_the_terminal_but_keeps_a_command_to_copy_whole(capsys, monkeypatch):
    """At 80 columns no --help line is wider, the exit statuses and cap's and pacelc's figures wrapped under
    their indent (they were single lines of 300 characters); serve's synopsis, a shell command, stays whole."""
    monkeypatch.setenv("COLUMNS", "80")
    for command in COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        lines = capsys.readouterr().out.splitlines()
        assert max(map(len, lines)) <= 80, (command, max(lines, key=len))
        if command == "serve":
            assert any(line.rstrip().endswith("\\") and "--listen 127.0.0.1:9001" in line for line in lines)
            assert any(
                line.strip() == "--peer n2=http://127.0.0.1:9002 --peer n3=http://127.0.0.1:9003" for line in lines
            )


def test_ctrl_c_while_the_parser_is_being_built_exits_130(monkeypatch, capsys):
    """An interrupt before the command runs (while its modules import) still exits 130, not a traceback."""
    import capsim.cli

    def interrupted(lazy=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(capsim.cli, "build_parser", interrupted)
    assert main(["cap"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_ctrl_c_while_a_commands_module_imports_exits_130(monkeypatch, capsys):
    """The command's module is imported while its arguments are parsed: an interrupt there exits 130 too."""
    import importlib

    def interrupted(name, package=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib, "import_module", interrupted)
    assert main(["cap", "--seed", "1"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_the_command_entry_runs_main_and_leaves_the_collector_nothing_to_walk_at_exit():
    """capsim (the console script) and python -m capsim run main on sys.argv, then gc.freeze every live object."""
    code = (
        "import gc, sys, capsim.cli\n"
        "sys.argv = ['capsim', 'check', '--example', 'knossos-cas-register-bug-good']\n"
        "status = capsim.cli.command()\n"
        "print(status, gc.get_freeze_count() > 0, gc.get_count()[2])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-3:] == ["0", "True", "0"], out.stderr[-2000:]
    main_module = (Path(capsim.cli.__file__).parent / "__main__.py").read_text()
    assert "sys.exit(command())" in main_module


# -- start-up: a command imports what it runs and nothing else (checked by sys.modules, not by a clock) --

#: Imported by no command's --help: the kernel, the protocols, the fault policy, and what only some runs need.
HEAVY = ("emulator", "faults", "nodes", "capsim.cap", "capsim.report", "rich", "aiohttp", "dask", "distributed")


def _under(modules: set[str], packages: tuple[str, ...]) -> set[str]:
    return {m for m in modules if m in packages or m.startswith(tuple(p + "." for p in packages))}


def test_capsim_help_imports_no_command_and_not_the_kernel():
    """`capsim --help` lists every command from the summaries alone: no command module, no kernel, no rich."""
    modules = modules_after("--help")
    assert not _under(modules, ("capsim.commands", *HEAVY, "importlib.metadata"))


def test_the_version_is_looked_up_only_when_asked_for():
    """importlib.metadata (tens of ms) is imported for --version, not for a command."""
    assert "importlib.metadata" in modules_after("--version")
    assert "importlib.metadata" not in modules_after("chaos", "--help")


@pytest.mark.parametrize("name", COMMANDS)
def test_a_commands_help_imports_no_other_command(name):
    """`capsim NAME --help` builds NAME's parser only: no other command's module (sweeps: the --seeds plumbing)."""
    commands = _under(modules_after(name, "--help"), ("capsim.commands",))
    assert commands <= {"capsim.commands", f"capsim.commands.{name}", "capsim.commands.sweeps"}


def test_chaos_help_imports_neither_the_kernel_nor_rich():
    """`capsim chaos --help` (it lists the shipped scenarios) imports none of what a run needs."""
    assert not _under(modules_after("chaos", "--help"), HEAVY)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["nosuch"], *([name, "--help"] for name in COMMANDS), ["cluster", "up", "--help"], ["cap", "--x"]],
)
def test_the_parser_main_builds_lazily_prints_what_the_whole_parser_prints(capsys, argv):
    """main builds a command's parser only when it is called: the help and the errors are the same as built whole."""
    printed = []
    for lazy in (False, True):
        with pytest.raises(SystemExit) as exit_info:
            build_parser(lazy=lazy).parse_args(argv)
        printed.append((exit_info.value.code, capsys.readouterr()))
    assert printed[0] == printed[1]


def _returned_codes(source: str) -> set[int]:
    """Integer literals a module's functions return: ``return 3``, ``return 1 if x else 0``, ``{...}[v]``, names."""
    import ast

    tree = ast.parse(source)
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and type(node.value.value) is int
    }

    def codes(node) -> set[int]:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return {node.value}
        if isinstance(node, ast.Name) and node.id in constants:
            return {constants[node.id]}
        if isinstance(node, ast.IfExp):
            return codes(node.body) | codes(node.orelse)
        if isinstance(node, ast.Subscript):
            return codes(node.value)
        if isinstance(node, ast.Dict):
            return set().union(*(codes(value) for value in node.values))
        return set()

    return set().union(*(codes(node.value) for node in ast.walk(tree) if isinstance(node, ast.Return)))


def test_every_status_a_command_can_return_is_documented():
    """Each integer a command module returns is in EXIT_STATUS for it (or common): the table cannot fall behind."""
    import importlib
    import inspect

    from capsim.cli import COMMANDS, COMMON_EXIT_STATUS, EXIT_STATUS

    for command in COMMANDS:
        source = inspect.getsource(importlib.import_module(f"capsim.commands.{command}"))
        returned = _returned_codes(source)
        assert returned, command
        assert returned <= set(EXIT_STATUS[command]) | set(COMMON_EXIT_STATUS), (command, returned)
    assert _returned_codes("X = 4\ndef f(a):\n    return X if a else {1: 5}[a]\n") == {4, 5}


@pytest.mark.parametrize(
    "argv",
    [
        ["cap"],
        ["pacelc"],
        ["demo"],
        ["chaos", "lin-kv-partitions"],
        ["serve", "--node", "n0"],
        ["cluster", "up"],
        ["cluster", "workload"],
    ],
)
def test_a_negative_seed_is_refused_by_every_command_as_seeds_refuses_it(capsys, argv):
    """--seed -1 is one line and exit 2, everywhere (--seeds refuses negative seeds too)."""
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--seed", "-1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "whole number >= 0" in err


@pytest.mark.parametrize("argv", [["cap"], ["chaos", "lin-kv-partitions"]])
@pytest.mark.parametrize("value", ["-1-2", "-3"])
def test_a_negative_seed_range_says_no_seed_is_negative(capsys, argv, value):
    """--seeds -1-2 was argparse's "expected one argument" (it took -1-2 for an option); now the range's own error."""
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--seeds", value])
    err = capsys.readouterr().err
    assert (
        exit_info.value.code == 2
        and err.count("\n") == 1
        and f"such as 1-20 (no seed is negative), got '{value}'" in err
    )


def test_only_the_value_after_seeds_is_attached():
    """The rewrite touches --seeds' value alone: other options, and anything after '--', pass as given."""
    from capsim.cli import _seed_ranges_attached

    assert _seed_ranges_attached(["cap", "--seeds", "-1-2", "--out", ""]) == ["cap", "--seeds=-1-2", "--out", ""]
    assert _seed_ranges_attached(["cap", "--seeds", "1-2", "--seed", "-1"]) == ["cap", "--seeds", "1-2", "--seed", "-1"]
    assert _seed_ranges_attached(["x", "--", "--seeds", "-1"]) == ["x", "--", "--seeds", "-1"]
    assert _seed_ranges_attached(["cap", "--seeds"]) == ["cap", "--seeds"]
    assert _seed_ranges_attached(["pacelc", "--t", "-1ms"]) == ["pacelc", "--t=-1ms"]
    assert _seed_ranges_attached(["pacelc", "--t", "-.5ms", "--seed", "-1"]) == ["pacelc", "--t=-.5ms", "--seed", "-1"]


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--examples"],
        ["cap", "--duration", "2", "--partition-at", "0.5", "--heal-at", "1.5", "--config", "cp"],
        ["chaos", "lin-kv-partitions"],
        ["chaos", "lin-kv-partitions", "--seeds", "1-2", "--workers", "2"],
        ["demo", "partition", "--quick"],
    ],
)
def test_a_reader_that_goes_away_ends_the_command_quietly_with_141(argv):
    """`capsim ... | head`: no 'Broken pipe' error and no traceback, status 141 as Unix tools on SIGPIPE."""
    proc = subprocess.Popen([sys.executable, "-m", "capsim", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is printed
    assert proc.wait(timeout=120) == 141
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and "pipe" not in err.lower() and "error" not in err.lower()
    assert all(line.startswith("seeds ") for line in err.splitlines())  # a sweep's progress bar, on stderr, alone


def _taken_port_serve(protocol: str) -> tuple[list[str], socket.socket]:
    """serve's argv for ``protocol`` at an address already taken, and the socket holding it: the node exits 3
    once it found its class and tried to bind, 2 if the class does not import."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return ["serve", "--protocol", protocol, "--name", "n1", "--listen", f"127.0.0.1:{taken.getsockname()[1]}"], taken


def test_a_protocol_of_one_s_own_imports_from_the_working_directory(tmp_path, monkeypatch, capsys):
    """The capsim console script's sys.path starts at its own directory, so `--protocol mine:Node` said it
    could not import a mine.py beside the user; now the working directory is searched too (after the installed
    modules, and only while the command runs)."""
    (tmp_path / "mine_in_cwd.py").write_text("from emulator.transport.diag import Echo as Node\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAPSIM_TOKEN", "t")
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", str(tmp_path))])
    before = list(sys.path)
    argv, taken = _taken_port_serve("mine_in_cwd:Node")
    with taken:
        assert main(argv) == 3, capsys.readouterr().err
    assert sys.path == before
    sys.modules.pop("mine_in_cwd", None)
    script = Path(sys.executable).with_name("capsim")  # the console script pip installed
    if script.exists():
        argv, taken = _taken_port_serve("mine_in_cwd:Node")
        with taken:
            done = subprocess.run([str(script), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 3, done.stderr
        # Searched after the installed modules: a file here named like one of them is never imported instead.
        (tmp_path / "rich.py").write_text("raise ImportError('the working directory shadowed rich')\n")
        demo = [str(script), "demo", "partition", "--quick"]
        done = subprocess.run(demo, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr


_CRASHY = """
from emulator import Node


class InitBoom(Node):
    def __init__(self):
        raise KeyError("init boom")


class Exits(Node):
    async def handle_read(self, msg):
        raise SystemExit(3)

    handle_write = handle_cas = handle_read  # a store, as capsim cap asks of a config's protocol


InitBoom.handle_read = InitBoom.handle_write = InitBoom.handle_cas = Exits.handle_read
"""


@pytest.mark.parametrize(
    "protocol, words",
    [
        ("crashy_protocol:InitBoom", "your code raised KeyError: 'init boom' ("),
        ("crashy_protocol:Exits", "your code called sys.exit(3) ("),
    ],
)
def test_your_protocol_s_exception_is_one_line_saying_where_and_exit_1(tmp_path, monkeypatch, capsys, protocol, words):
    """A node class that raises as it is built, or a handler that calls sys.exit, is the user's code failing: one
    line naming the file, line and function, exit 1 (a run that raised), not a traceback nor capsim exiting 3."""
    (tmp_path / "crashy_protocol.py").write_text(_CRASHY)
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        f'[cluster]\nprotocol = "{protocol}"\nnodes = 3\n[workload]\nclients = 2\nrate = 20\nkeys = 2\nduration = 1.0\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CAPSIM_TRACEBACK", raising=False)
    for command in (
        ["chaos", "s.toml"],
        ["cap", "--config", "c.toml", "--duration", "2", "--partition-at", "0.5", "--heal-at", "1"],
    ):
        (tmp_path / "c.toml").write_text(f'[[config]]\nname = "x"\nprotocol = "{protocol}"\nclaim = "c"\n')
        assert main(command) == 1
        err = capsys.readouterr().err
        line = "line 7, in __init__" if "Init" in protocol else "line 12, in handle_read"
        assert err.count("\n") == 1 and words in err and f"crashy_protocol.py, {line})" in err, err
        assert "Traceback" not in err and "CAPSIM_TRACEBACK=1" in err
    monkeypatch.setenv("CAPSIM_TRACEBACK", "1")  # the whole traceback, on asking
    with pytest.raises((KeyError, SystemExit)):
        main(["chaos", "s.toml"])


def test_a_bug_in_capsim_s_own_code_keeps_its_traceback(monkeypatch):
    """An exception raised in capsim's own code is its bug, not the user's mistake: it propagates (a traceback)."""
    import faults.chaos

    # a call capsim's chaos command makes wrongly (judge takes other arguments): the TypeError is raised in capsim
    monkeypatch.setattr(faults.chaos, "run_chaos", faults.chaos.judge)
    monkeypatch.delenv("CAPSIM_TRACEBACK", raising=False)
    with pytest.raises(TypeError, match="keep_trace"):
        main(["chaos", "lin-kv-partitions"])


@pytest.mark.parametrize(
    "argv",
    [
        ["chaos", "lin-kv-partitions", "--out", ""],
        ["chaos", "lin-kv-partitions", "--seeds", "1-2", "--results", ""],
        ["check", "never-read.jsonl", "--html", ""],
        ["cap", "--out", ""],
        ["demo", "--out", ""],
        ["pacelc", "--out", ""],
        ["cluster", "status", "--state", ""],
        ["cluster", "workload", "--out", ""],
    ],
)
def test_an_empty_path_is_a_usage_error_not_nothing_or_the_current_directory(argv, tmp_path, monkeypatch, capsys):
    """--out "" (an unset shell variable) made chaos and check write nothing, and cap, demo and pacelc write into the
    current directory (demo over cap's index.html): now one line, exit 2, and nothing written."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and "expected a path, got ''" in err
    assert list(tmp_path.iterdir()) == []


def test_a_ctrl_c_that_python_drops_still_ends_the_command_with_130_and_no_traceback(monkeypatch, capsys):
    """A Ctrl-C landing in a __del__ or a weakref callback raises where nothing can catch it: Python printed
    'Exception ignored ... KeyboardInterrupt' and the command went on to exit 0. It is remembered: 130, one line."""
    import capsim.cli as cli

    class DiesOnCtrlC:
        def __del__(self):
            cli._note_interrupt(signal.SIGINT, None)  # what the handler does when the signal lands here

    def a_command_during_which_ctrl_c_lands_in_a_finalizer(args):
        DiesOnCtrlC()  # freed at once: its __del__ raises KeyboardInterrupt, which Python cannot propagate
        return 0

    monkeypatch.setattr(cli, "_run", a_command_during_which_ctrl_c_lands_in_a_finalizer)
    hook = sys.unraisablehook
    assert main(["check", "--examples"]) == 130
    err = capsys.readouterr().err
    assert err == "capsim: interrupted\n"
    assert sys.unraisablehook is hook and not cli._INTERRUPTS  # as they were, after the command


@pytest.mark.parametrize(
    "argv, prog",
    [(["cap", "extra"], "capsim cap"), (["cluster", "status", "extra"], "capsim cluster status")],
)
def test_a_stray_argument_is_named_by_the_command_it_was_given_to(argv, prog, capsys):
    """'capsim cap extra' said 'capsim: error: ...' and pointed at capsim --help, not at the command's."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err == f"{prog}: error: unrecognized arguments: extra (see: {prog} --help)\n"


def test_a_closed_standard_output_is_one_line_not_a_traceback():
    """capsim cap --json >&- ended in AttributeError: 'NoneType' object has no attribute 'write'."""
    out = subprocess.run(
        [sys.executable, "-m", "capsim", "check", "--examples"],
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert out.returncode == 2 and out.stderr == (
        "capsim: error: standard output is closed; redirect it instead (> FILE, or > /dev/null)\n"
    )


def test_a_primary_function_of_one_s_own_that_raises_is_one_line_saying_where(tmp_path, monkeypatch, capsys):
    """cluster.primary = "module:function" that raises when a fault asks who leads: one line, exit 1."""
    (tmp_path / "who_leads.py").write_text("def boom(sim):\n    raise RuntimeError('who leads? no idea')\n")
    (tmp_path / "s.toml").write_text(
        '[cluster]\nprotocol = "quorum"\nnodes = 3\nprimary = "who_leads:boom"\n'
        "[workload]\nclients = 2\nrate = 20\nkeys = 2\nduration = 2.0\n"
        '[[faults.steps]]\nat = 1.0\nkind = "partition"\nshape = "isolate-primary"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CAPSIM_TRACEBACK", raising=False)
    assert main(["chaos", "s.toml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "your code raised RuntimeError: who leads? no idea (" in err
    assert "who_leads.py, line 2, in boom)" in err


def test_memory_running_out_in_any_command_is_one_line_and_exit_2(capsys, monkeypatch):
    """A MemoryError no command catches itself (here: demo's) ends in one line and exit 2, not a traceback."""
    import capsim.commands.demo as demo

    def out_of_memory(args):
        raise MemoryError

    monkeypatch.setattr(demo, "run", out_of_memory)
    assert main(["demo"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("capsim: error: memory ran out")
