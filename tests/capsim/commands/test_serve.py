"""Tests of capsim/commands/serve.py: one node process, its secret, its misuses, and its parent."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from capsim.cli import main
from emulator.transport.processes import running

ROOT = str(Path(__file__).resolve().parents[3])
SERVE = [sys.executable, "-m", "capsim.commands.serve"]


@pytest.fixture(autouse=True)
def _no_secret(monkeypatch):
    """No CAPSIM_TOKEN from the environment the tests run in; node processes can import test nodes."""
    monkeypatch.delenv("CAPSIM_TOKEN", raising=False)
    monkeypatch.setenv("PYTHONPATH", ROOT)


def test_a_taken_port_exits_3_without_printing_a_secret(capsys):
    """The port is in use: exit 3 naming the address, and no token on either stream (it was never usable)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--protocol", "lin-kv", "--name", "n1", "--listen", f"127.0.0.1:{port}"]) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith(f"capsim serve: error: cannot listen on 127.0.0.1:{port}: ")
    assert captured.err.count("\n") == 1 and "already in use" in captured.err
    assert captured.out == "" and "TOKEN" not in captured.err


@pytest.mark.parametrize(
    "peers, words",
    [
        (["--peer", "n1=http://127.0.0.1:9001"], "--peer n1=http://127.0.0.1:9001 names this node (n1)"),
        (["--peer", "n2=http://127.0.0.1:9002", "--peer", "n2=http://127.0.0.1:9003"], "--peer n2 given twice"),
    ],
)
def test_a_peer_naming_the_node_itself_or_twice_is_refused(capsys, peers, words):
    """--peer n1=... on node n1, or one peer with two URLs: one line, exit 2, nothing started."""
    assert main(["serve", "--protocol", "lin-kv", "--name", "n1", *peers]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_a_public_address_without_a_secret_is_refused(capsys):
    """--listen 0.0.0.0 with no CAPSIM_TOKEN or --token-file: exit 2, saying how to give the secret."""
    assert main(["serve", "--protocol", "lin-kv", "--name", "n1", "--listen", "0.0.0.0:0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "set CAPSIM_TOKEN or --token-file PATH" in err


def test_serve_alone_prints_one_line_for_an_argument_error():
    """python -m capsim.commands.serve with a bad argument: one line, exit 2, no usage block."""
    out = subprocess.run([*SERVE, "--protocol"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("capsim serve: error: argument --protocol: expected one argument")


def _start(*argv: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """A serve process and its URL, from the line it prints once it listens."""
    proc = subprocess.Popen(
        [*SERVE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    line = proc.stdout.readline()
    assert "listening on" in line, line + proc.stderr.read()
    return proc, line.rsplit(" ", 1)[1].strip()


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    return err


def _get(url: str, token: str | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def test_a_generated_secret_is_printed_once_listening_and_opens_control():
    """Without a secret, serve makes one, prints it after it listens, and that token opens /control."""
    proc, url = _start("--protocol", "lin-kv", "--name", "n1")
    try:
        token = None
        for line in proc.stderr:
            if "CAPSIM_TOKEN=" in line:
                token = line.rsplit("CAPSIM_TOKEN=", 1)[1].strip()
                break
        assert token and _get(url + "/control/state", token)["node"] == "n1"
    finally:
        _stop(proc)


def test_serve_s_timeout_bounds_how_long_a_request_s_body_may_take():
    """--timeout 0.3: a sender that stops mid-body is answered 408 within it and its connection closed (5 s by
    default, the README says: serve's default and NodeHost's)."""
    import argparse

    from capsim.commands.serve import add_arguments
    from emulator.transport import NodeHost
    from tests.common.transport_nodes import Relay

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--protocol", "lin-kv", "--name", "n1"]).timeout == 5.0
    assert NodeHost("n1", Relay).timeout == 5.0
    proc, url = _start("--protocol", "lin-kv", "--name", "n1", "--timeout", "0.3")
    try:
        with socket.create_connection(url.removeprefix("http://").rsplit(":", 1), timeout=10) as conn:
            conn.sendall(b'POST /msg HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"src"')
            began = time.monotonic()
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
            took = time.monotonic() - began
        assert answer.startswith(b"HTTP/1.1 408") and b"within 0.3 s" in answer and 0.25 <= took < 5
    finally:
        _stop(proc)


def test_a_public_address_with_a_secret_warns_that_messages_travel_in_clear():
    """--listen 0.0.0.0 with CAPSIM_TOKEN starts, with one warning line on stderr."""
    proc, _ = _start("--protocol", "lin-kv", "--name", "n1", "--listen", "0.0.0.0:0", env={"CAPSIM_TOKEN": "s"})
    err = _stop(proc)
    assert "warning: listening on 0.0.0.0" in err and "travel in clear" in err


def test_nodes_sharing_a_token_file_are_peers_and_a_stranger_is_not(tmp_path):
    """Two nodes started with one --token-file exchange signed messages; n1 takes none from a forger."""
    token_file = str(tmp_path / "cluster.token")
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    common = ["--protocol", "tests.common.transport_nodes:Relay", "--token-file", token_file]
    n1, _ = _start(*common, "--name", "n1", "--listen", f"127.0.0.1:{ports[0]}", "--peer", f"n2={urls[1]}")
    n2, _ = _start(*common, "--name", "n2", "--listen", f"127.0.0.1:{ports[1]}", "--peer", f"n1={urls[0]}")
    try:
        tell = {"src": "c9", "dest": "n2", "body": {"type": "tell", "to": "n1", "text": "from n2"}}
        forged = {"src": "n2", "dest": "n1", "body": {"type": "note", "text": "forged"}}
        assert _post(urls[1], tell) == 202
        assert _post(urls[0], forged) == 401
        status = _wait_delivered(urls[0])
        assert status["counters"]["delivered"] == 1 and status["counters"]["rejected"] == 1
        assert oct(os.stat(token_file).st_mode & 0o777) == "0o600"
    finally:
        _stop(n1)
        _stop(n2)


def _post(url: str, envelope: dict) -> int:
    request = urllib.request.Request(url + "/msg", data=json.dumps(envelope).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_delivered(url: str) -> dict:
    import time

    for _ in range(100):
        status = _get(url + "/status")
        if status["counters"]["delivered"]:
            return status
        time.sleep(0.05)
    return status


def test_serve_refuses_an_unknown_protocol(capsys):
    """An unknown protocol exits 2 with the list of known ones."""
    assert main(["serve", "--protocol", "no-such", "--name", "n1"]) == 2
    assert "unknown protocol 'no-such'; use one of" in capsys.readouterr().err


def test_serve_finds_a_module_of_one_s_own_in_its_import_path_and_says_to_give_one(tmp_path, monkeypatch, capsys):
    """A module:Class that does not import says to give its directory with --import-path; given it, the class is
    found there, and the node goes on to bind its address (taken here: exit 3, not the usage error's 2)."""
    assert main(["serve", "--protocol", "servedmod_elsewhere:Node", "--name", "n1"]) == 2
    err = capsys.readouterr().err
    assert "cannot import module 'servedmod_elsewhere'" in err and "--import-path DIR" in err
    (tmp_path / "servedmod_elsewhere.py").write_text("from emulator.transport.diag import Echo as Node\n")
    monkeypatch.setattr(sys, "path", list(sys.path))  # serve prepends the directory: put sys.path back after
    monkeypatch.setenv("CAPSIM_TOKEN", "t")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        argv = ["--protocol", "servedmod_elsewhere:Node", "--name", "n1", "--import-path", str(tmp_path)]
        assert main(["serve", *argv, "--listen", listen]) == 3
    sys.modules.pop("servedmod_elsewhere", None)


def test_serve_on_a_taken_port_exits_3(capsys, monkeypatch):
    """A port already in use exits 3 (the launcher's cue to retry elsewhere) with the reason."""
    monkeypatch.setenv("CAPSIM_TOKEN", "t")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert (
            main(
                ["serve", "--protocol", "emulator.transport.diag:Echo", "--name", "n1", "--listen", f"127.0.0.1:{port}"]
            )
            == 3
        )
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "address already in use; pick another port, or --listen 127.0.0.1:0 for a free one" in err


def test_serve_on_an_address_not_of_this_machine_says_what_to_give(capsys, monkeypatch):
    """An address no interface has (or a name that does not resolve) exits 3 saying to give one of this machine's."""
    monkeypatch.setenv("CAPSIM_TOKEN", "t")
    for host in ("192.0.2.1", "no-such-host.invalid"):
        assert (
            main(["serve", "--protocol", "emulator.transport.diag:Echo", "--name", "n1", "--listen", f"{host}:0"]) == 3
        )
        err = capsys.readouterr().err
        assert f"cannot listen on {host}:0" in err and "give an address of this machine, such as 127.0.0.1" in err


@pytest.mark.parametrize(
    "bad, words",
    [
        ("--listen=nohost:x", "HOST:PORT"),
        ("--peer=n2", "NAME=URL"),
        ("--peer=n2=ftp://x", "NAME=URL"),
        # URLs with no host, a bad port or an unclosed bracket were taken: every message to the peer was dropped
        ("--peer=n2=http://", "NAME=URL"),
        ("--peer=n2=http://127.0.0.1:99999", "NAME=URL"),
        ("--peer=n2=http://[::1", "NAME=URL"),
        ("--peer=n2=http://a b:1", "NAME=URL"),
        ("--config=[1]", "JSON object"),
        # a negative limit, or a parent no process can have, was taken and the node started anyway
        ("--max-body=-1", "argument --max-body: expected a positive whole number"),
        ("--max-body=0", "argument --max-body: expected a positive whole number"),
        ("--parent-pid=-5", "argument --parent-pid: expected a positive whole number"),
        ("--timeout=0", "argument --timeout: expected a finite number > 0"),
        ("--timeout=inf", "argument --timeout: expected a finite number > 0"),
    ],
)
def test_serve_rejects_malformed_options(bad, words, capsys):
    """Malformed --listen, --peer or --config are usage errors (exit 2), before anything starts."""
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--protocol", "lin-kv", "--name", "n1", bad])
    assert exited.value.code == 2 and words in capsys.readouterr().err


def test_the_help_shows_the_synopsis_as_the_shell_takes_it(capsys):
    """--help prints the example command on its two lines; rewrapped, its backslash fell mid-line ('\\ --peer')."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "\\ --peer" not in out
    assert "capsim serve --protocol lin-kv --name n1 --listen 127.0.0.1:9001 \\\n" in out


@pytest.mark.parametrize("flag, kind", [("--data-dir", "a file"), ("--token-file", "a directory")])
def test_a_data_dir_or_token_file_of_the_wrong_kind_is_one_line_naming_the_flag(tmp_path, capsys, flag, kind):
    """--data-dir naming a file, or --token-file naming a directory: exit 2, the flag and what to give (was [Errno])."""
    path = tmp_path / "thing"
    path.mkdir() if kind == "a directory" else path.write_text("secret\n")
    assert main(["serve", "--protocol", "lin-kv", "--name", "n1", flag, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"capsim serve: error: {flag} {path}: ") and "[Errno" not in err
    assert ("give a directory" if flag == "--data-dir" else "give a file") in err


def test_a_node_with_a_parent_pid_stops_when_its_parent_is_killed(tmp_path):
    """serve --parent-pid exits on its own once its parent dies, even by SIGKILL: no orphans."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import subprocess, sys, time\n"
                "child = subprocess.Popen([sys.executable, '-m', 'capsim.commands.serve', '--protocol', 'lin-kv',"
                " '--name', 'n0', '--parent-pid', str(__import__('os').getpid())])\n"
                "print(child.pid, flush=True)\n"
                "time.sleep(60)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    assert running(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10  # the watch looks every 0.5 s
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(child)


def test_a_second_node_on_the_same_storage_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """serve on a data directory whose storage for this name another running node owns: exit 2, one line naming
    the file and what to give, no traceback."""
    import os

    from emulator.transport.host import _lock_storage

    monkeypatch.setenv("CAPSIM_TOKEN", "t")
    held = _lock_storage(tmp_path / "n1.storage")
    try:
        argv = ["serve", "--protocol", "lin-kv", "--name", "n1", "--data-dir", str(tmp_path)]
        assert main(argv) == 2
    finally:
        os.close(held)
    err = capsys.readouterr().err
    assert f"{tmp_path}/n1.storage is in use by another node (pid {os.getpid()})" in err
    assert "its own --data-dir" in err and "Traceback" not in err


def test_a_node_class_that_raises_as_it_is_built_is_one_line_saying_where(tmp_path, capsys, monkeypatch):
    """serve: 'cannot start' with the exception and its file and line, exit 2, and no traceback (a launched cluster
    folds the node's stderr into its own one line, carets and all, when there was one)."""
    (tmp_path / "boom_at_init.py").write_text(
        "from emulator import Node\n\n\nclass Boom(Node):\n"
        "    def __init__(self):\n        raise KeyError('init boom')\n"
    )
    monkeypatch.delenv("CAPSIM_TRACEBACK", raising=False)
    argv = ["serve", "--protocol", "boom_at_init:Boom", "--name", "n1", "--import-path", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "cannot start boom_at_init:Boom as n1: KeyError: 'init boom' (" in err and "boom_at_init.py, line 6)" in err


def test_a_parent_pid_that_is_not_the_parent_is_refused_before_listening(capsys):
    """--parent-pid of another process, or of none: exit 2 and what to give; it used to listen, then stop at once."""
    import os

    assert main(["serve", "--protocol", "lin-kv", "--name", "n1", "--parent-pid", str(os.getpid())]) == 2
    err = capsys.readouterr().err
    assert f"--parent-pid {os.getpid()}: not this process's parent (that is {os.getppid()})" in err
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: no process has its pid now (until the kernel hands it out again, long after this)
    assert main(["serve", "--protocol", "lin-kv", "--name", "n1", "--parent-pid", str(gone.pid)]) == 2
    assert f"--parent-pid {gone.pid}: no such process" in capsys.readouterr().err
