"""aiohttp, unchanged, between simulated hosts: a service and its clients under partitions and crashes."""

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import pytest

import emulator as em
from tests.common import hosts_run
from tests.common.hosts import counter_app, now, poller


def _service(seed=1, **network):
    sim = em.Simulation(seed=seed, latency=network.pop("latency", 0.005), **network)
    sim.add_host("web", counter_app, delay=5.0)
    return sim


def test_an_aiohttp_service_answers_a_client_by_host_name():
    """web.AppRunner + TCPSite("0.0.0.0", 8080) on one host, a ClientSession on another, http://web:8080/."""
    log = []
    sim = _service()
    sim.add_host("client", poller, url="http://web:8080/", log=log)
    sim.run(until=2.2)
    sim.close()
    assert log == [(0.0, 200, 1), (0.52, 200, 2), (1.03, 200, 3), (1.54, 200, 4), (2.05, 200, 5)]
    assert sim.errors == []


def test_the_client_times_out_during_a_partition_and_recovers_after_the_heal():
    """Requests time out (in virtual time) while the link is cut; after the heal they succeed again."""
    log = []
    sim = _service()
    sim.add_host("client", poller, url="http://web:8080/", log=log, timeout=1.0)
    sim.run(until=1.2)
    sim.network.partition(["web"], ["client"])
    sim.run(until=4.2)
    sim.network.heal()
    sim.run(until=6)
    sim.close()
    during = [entry for entry in log if 1.2 <= entry[0] < 4.2]
    after = [entry for entry in log if entry[0] >= 4.2]
    assert during and all(status == "TimeoutError" for _, status, _ in during)
    assert during[0][0] == pytest.approx(1.54) and during[1][0] == pytest.approx(3.04)  # each waited 1 s + 0.5 s
    assert after and all(status == 200 for _, status, _ in after)


def test_a_crash_resets_the_request_in_flight_and_a_restart_serves_again_from_empty_memory():
    """The server crashes mid-request: the client reads a connection reset at once, not a timeout.

    (A POST: aiohttp retries an idempotent GET once on a fresh connection, which would then wait on
    the crashed host.)
    """
    seen = []

    async def client():
        async with aiohttp.ClientSession() as session:
            try:
                async with session.post("http://web:8080/slow") as response:
                    seen.append(response.status)
            except aiohttp.ClientConnectionError as exc:
                seen.append((type(exc).__name__, round(now(), 3)))
            await asyncio.sleep(2)
            async with session.get("http://web:8080/") as response:
                seen.append((await response.json())["n"])

    sim = _service()
    sim.add_host("client", client)
    sim.run(until=1)
    sim.crash("web")
    sim.run(until=1.5)
    sim.restart("web")
    sim.run(until=5)
    sim.close()
    assert seen in ([("ClientOSError", 1.005), 1], [("ServerDisconnectedError", 1.005), 1])


def test_client_timeouts_run_in_virtual_time():
    """A 30 s ClientTimeout against a black-holed server fires at exactly t = 30, in no wall time to speak of."""
    seen = {}

    async def client():
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                await session.get("http://web:8080/")
        except TimeoutError:
            seen["at"] = now()

    sim = _service()
    sim.network.isolate("web")
    sim.add_host("client", client)
    sim.run(until=100)
    sim.close()
    assert seen["at"] == 30.0


def test_connections_outside_the_simulation_are_refused():
    """aiohttp to a real name, a real address or https raises NotAllowed, which says what to do."""
    errors = []

    async def client():
        async with aiohttp.ClientSession() as session:
            for url in ("http://example.com/", "http://93.184.216.34/", "https://web:8080/"):
                try:
                    await session.get(url)
                except em.NotAllowed as exc:
                    errors.append(str(exc))

    sim = _service()
    sim.add_host("client", client)
    sim.run(until=1)
    sim.close()
    assert "'example.com' is outside the simulated network" in errors[0]
    assert "'93.184.216.34' is outside the simulated network" in errors[1]
    assert "TLS is not allowed inside a simulation" in errors[2] and "http://" in errors[2]


def test_the_same_seed_gives_the_same_digest_and_responses_in_any_process():
    """Under loss, duplication, reordering, a partition, a crash and skew: equal in-process and across hash seeds."""
    script = Path(hosts_run.__file__)
    env = dict(os.environ, PYTHONHASHSEED="4242")
    out = subprocess.run(
        [sys.executable, str(script), "3"], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    _seed, digest, responses = out.stdout.split()
    assert (digest, responses) == hosts_run.run(3) == hosts_run.run(3)
    assert hosts_run.run(4) != (digest, responses)


def test_files_through_executors_and_threads_are_refused_with_what_to_do(tmp_path):
    """Reading a file in an executor, asyncio.to_thread and a thread raise NotAllowed saying what to do instead."""
    path = tmp_path / "config.txt"
    path.write_text("real disk")
    errors = []

    async def program():
        loop = asyncio.get_running_loop()
        for attempt in (
            lambda: loop.run_in_executor(None, path.read_text),
            lambda: asyncio.to_thread(path.read_text),
            lambda: loop.run_in_executor(None, threading.Thread(target=print).start),
        ):
            try:
                await attempt()
            except em.NotAllowed as exc:
                errors.append(str(exc))

    sim = em.Simulation(seed=1)
    sim.add_host("a", program)
    sim.run(until=1)
    sim.close()
    assert len(errors) == 3
    assert all("is not allowed inside a simulation" in e and "Do the work before sim.run()" in e for e in errors)
    assert errors[1].startswith("run_in_executor (and asyncio.to_thread)")


def test_aiohttp_resolves_host_names_without_threads_or_executors():
    """aiohttp's default ThreadedResolver asks loop.getaddrinfo, which answers in the loop: no thread, no executor."""
    seen = {}

    async def client():
        seen["resolver"] = type(aiohttp.TCPConnector()._resolver).__name__
        seen["threads"] = [t.name for t in threading.enumerate()]
        async with aiohttp.ClientSession() as session, session.get("http://web:8080/") as response:
            seen["status"] = response.status
        seen["threads after"] = [t.name for t in threading.enumerate()]

    sim = _service()
    sim.add_host("client", client)
    sim.run(until=1)
    sim.close()
    assert seen["resolver"] == "ThreadedResolver" and seen["status"] == 200
    assert seen["threads"] == seen["threads after"]
