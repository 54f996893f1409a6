"""One node on a real loop behind HTTP (NodeHost): life cycle, storage, delivery under faults, status."""

import asyncio
import os
import socket
import time

import pytest

import emulator as em
from emulator.message import Message
from emulator.transport import ControlClient, NodeHost
from tests.common.transport_http import TOKEN, envelope, post
from tests.common.transport_nodes import Relay


async def _until(predicate, limit=5.0):
    async with asyncio.timeout(limit):  # real time on a shared machine: generous
        while not predicate():
            await asyncio.sleep(0.005)


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.asyncio
async def test_a_soft_pause_holds_the_inbox_until_resume(host, http):
    """While paused, messages wait; on resume they are delivered in order."""
    control = ControlClient(host.url, TOKEN, http)
    await control.pause("n1")
    for i in range(3):
        await post(http, host.url + "/msg", envelope({"type": "note", "text": i}))
    await asyncio.sleep(0.01)
    assert host.node.notes == []
    await control.resume("n1")
    await asyncio.sleep(0.01)
    assert host.node.notes == [["x", 0], ["x", 1], ["x", 2]]


@pytest.mark.asyncio
async def test_a_port_in_use_raises_oserror():
    """A second host on a taken port fails to start with OSError and leaves nothing running."""
    first = await NodeHost("n1", Relay).start()
    try:
        with pytest.raises(OSError):
            await NodeHost("n2", Relay, port=first.port).start()
    finally:
        await first.stop()


@pytest.mark.parametrize(
    "name, factory, words",
    [("", Relay, "non-empty string"), (3, Relay, "non-empty string"), ("n1", "Relay", "needs a Node subclass")],
)
def test_a_bad_name_or_factory_is_a_config_error(name, factory, words):
    """NodeHost checks its name and factory when built, before anything listens."""
    with pytest.raises(em.ConfigError, match=words):
        NodeHost(name, factory)


def test_the_url_brackets_an_ipv6_host_and_peers_exclude_the_node_itself():
    """url is http://[::1]:PORT for IPv6; peers lose trailing slashes and the node's own name."""
    host = NodeHost("n1", Relay, host="::1", port=9001, peers={"n1": "http://x:1", "n2": "http://127.0.0.1:2/"})
    assert host.url == "http://[::1]:9001"
    assert host.peer_urls == {"n2": "http://127.0.0.1:2"}
    assert host.speaks_for_server("n1") and host.speaks_for_server("n2") and not host.speaks_for_server("c0")


@pytest.mark.asyncio
async def test_a_seed_gives_the_same_node_rng_and_none_draws_one():
    """Two hosts with one seed give their nodes the same rng draws; without a seed each host draws its own."""
    draws = []
    for seed in (5, 5):
        host = await NodeHost("n1", Relay, seed=seed).start()
        try:
            draws.append([host.node.rng.random() for _ in range(3)])
        finally:
            await host.stop()
    assert draws[0] == draws[1]
    assert NodeHost("n1", Relay).seed != NodeHost("n1", Relay).seed


def test_message_ids_start_from_the_wall_clock():
    """A host's first message id is at least the wall clock in microseconds, so a new process never reuses one."""
    before = int(time.time() * 1_000_000)  # wall-clock ok: what the host promises to follow
    assert next(NodeHost("n1", Relay).ids) >= before


@pytest.mark.asyncio
async def test_start_twice_and_restart_while_running_are_config_errors(host):
    """A running host refuses start() and restart(), with what to do instead."""
    with pytest.raises(em.ConfigError, match="already running"):
        await host.start()
    with pytest.raises(em.ConfigError, match="crash it before restarting"):
        await host.restart()


@pytest.mark.asyncio
async def test_a_crash_stops_listening_and_a_restart_comes_back_on_the_same_port_with_its_storage(host, http):
    """crash(): the port closes, the node is gone; restart(): same URL, a new node instance, storage kept."""
    url, first = host.url, host.node
    await host.crash()
    assert not host.alive and host.node is None and _refused(host.port)
    await host.restart()
    assert host.url == url and host.node is not first and host.node.storage["boots"] == 2
    status, _ = await post(http, host.url + "/msg", envelope({"type": "note", "text": "back"}))
    await _until(lambda: host.node.notes == [["x", "back"]])
    assert status == 202


@pytest.mark.asyncio
async def test_storage_in_a_data_dir_survives_a_new_process(tmp_path):
    """With data_dir, a fresh NodeHost (as after a process restart) finds the storage of the last one."""
    first = await NodeHost("n1", Relay, data_dir=tmp_path).start()
    await first.stop()
    second = await NodeHost("n1", Relay, data_dir=tmp_path).start()
    try:
        assert second.node.storage["boots"] == 2 and (tmp_path / "n1.storage").exists()
    finally:
        await second.stop()


@pytest.mark.asyncio
async def test_a_message_from_a_cut_off_sender_is_dropped_and_counted(host):
    """accept(): a message across a partition is dropped as 'partition', never delivered."""
    host.faults.apply("partition", {"groups": [["n1"], ["x"]]})
    host.accept([Message("x", "n1", {"type": "note", "text": 1}), Message("y", "n1", {"type": "note", "text": 2})])
    await _until(lambda: host.delivered == 1)
    assert host.node.notes == [["y", 2]] and host.inbound_drops == {"partition": 1} and host.received == 2


@pytest.mark.asyncio
async def test_a_message_for_a_crashed_node_is_dropped_as_down(host):
    """A message accepted just before a crash, delivered after it, is counted 'down' and reaches nobody."""
    host.accept([Message("x", "n1", {"type": "note", "text": 1})])
    node = host.node
    host.endpoint.kill()  # the node dies between accept and delivery
    await _until(lambda: host.inbound_drops["down"] == 1)
    assert node.notes == [] and host.delivered == 0


@pytest.mark.asyncio
async def test_status_reports_seed_counters_and_held_messages(http):
    """/status shows the seed, the counters, and how many messages a pause holds."""
    host = await NodeHost("n1", Relay, token=TOKEN, seed=11).start()
    try:
        await ControlClient(host.url, TOKEN, http).pause("n1")
        await post(http, host.url + "/msg", envelope({"type": "note", "text": 1}))
        status = await ControlClient(host.url, None, http).status()
        assert status["seed"] == 11 and status["status"] == "ok" and status["name"] == "n1"
        assert status["counters"]["held"] == 1 and status["counters"]["received"] == 1
        assert status["faults"] != []
    finally:
        await host.stop()
    assert _refused(host.port)


@pytest.mark.asyncio
async def test_two_running_nodes_cannot_share_one_storage_file(tmp_path):
    """Two nodes of one name on one data directory (two clusters started with the same --data-dir) both rewrote
    the same file, each over the other's writes. The second refuses to start, naming the file and the holder's
    pid, and says what to give; once the first stops, a new one starts on the storage."""
    first = await NodeHost("n1", Relay, data_dir=tmp_path).start()
    try:
        with pytest.raises(em.ConfigError, match="is in use by another node") as refused:
            await NodeHost("n1", Relay, data_dir=tmp_path).start()
        assert f"pid {os.getpid()}" in str(refused.value) and "its own --data-dir" in str(refused.value)
        assert first.node.storage["boots"] == 1
    finally:
        await first.stop()
    second = await NodeHost("n1", Relay, data_dir=tmp_path).start()
    try:
        assert second.node.storage["boots"] == 2
    finally:
        await second.stop()


@pytest.mark.asyncio
async def test_a_paused_host_holds_at_most_max_held_messages(http):
    """A soft pause held every message that came, without bound (the outbox has max_queue); beyond max_held they
    drop as inbound 'overflow', and the ones held are delivered, in order, on resume."""
    host = await NodeHost("n1", Relay, token=TOKEN, max_held=3).start()
    try:
        control = ControlClient(host.url, TOKEN, http)
        await control.pause("n1")
        for i in range(5):
            await post(http, host.url + "/msg", envelope({"type": "note", "text": i}))
        counters = (await ControlClient(host.url, None, http).status())["counters"]
        assert counters["held"] == 3 and counters["inbound_dropped"] == {"overflow": 2}
        await control.resume("n1")
        await _until(lambda: len(host.node.notes) == 3)
        assert host.node.notes == [["x", 0], ["x", 1], ["x", 2]]
    finally:
        await host.stop()


def test_hosts_past_the_file_descriptor_limit_are_an_os_error_saying_so():
    """With few file descriptors left, listen raises OSError (EMFILE) naming the limit: it was an IndexError (no
    socket and no error from aiohttp), a traceback under capsim cluster workload --clients 1500."""
    import resource
    import subprocess
    import sys

    script = (
        "import asyncio, errno\n"
        "from emulator.transport import NodeHost\n"
        "from tests.common.transport_nodes import Relay\n"
        "async def main():\n"
        "    hosts = []\n"
        "    try:\n"
        "        for i in range(200):\n"
        "            hosts.append(await NodeHost(f'n{i}', Relay).listen())\n"
        "    except OSError as exc:\n"
        "        print('OSError', exc.errno == errno.EMFILE, exc)\n"
        "asyncio.run(main())\n"
    )

    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, preexec_fn=few_descriptors
    )
    assert out.returncode == 0 and "IndexError" not in out.stderr, out.stderr
    assert out.stdout.startswith("OSError True"), out.stdout
