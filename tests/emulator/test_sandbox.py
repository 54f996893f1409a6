"""While a simulation with hosts runs, the clock, randomness, host name and threads answer from it."""

import asyncio
import os
import random
import secrets
import socket
import threading
import time
import uuid

import pytest

import emulator as em
from emulator.sandbox import EPOCH


def _sample() -> dict:
    return {
        "time": time.time(),
        "monotonic": time.monotonic(),
        "random": random.random(),
        "uuid": str(uuid.uuid4()),
        "urandom": os.urandom(4).hex(),
        "hostname": socket.gethostname(),
    }


def test_the_clock_randomness_and_host_name_come_from_the_simulation():
    """time.time is the host's (skewed) clock from 2025-01-01; random and uuid4 are the host's seeded streams."""
    seen = {}

    async def main(me):
        await asyncio.sleep(10)
        seen[me] = _sample()

    def run(seed):
        sim = em.Simulation(seed=seed)
        sim.add_host("a", main, me="a")
        sim.add_host("b", main, me="b")
        sim.skew("b", offset=3.0)
        sim.run(until=20)
        sim.close()
        return dict(seen)

    first = run(1)
    assert first["a"]["time"] == EPOCH + 10 and first["b"]["time"] == EPOCH + 13
    assert first["a"]["monotonic"] == first["b"]["monotonic"] == 10.0  # a monotonic clock does not step
    assert (first["a"]["hostname"], first["b"]["hostname"]) == ("a", "b")
    assert first["a"]["random"] != first["b"]["random"] and first["a"]["uuid"] != first["b"]["uuid"]
    assert run(1) == first
    assert run(2)["a"]["uuid"] != first["a"]["uuid"]


def test_outside_a_running_simulation_everything_is_real():
    """Between runs, and in code that is not on the simulation's loop, time and randomness are the machine's."""
    sim = em.Simulation(seed=1)
    sim.add_host("a")
    sim.run(until=5)
    sim.close()
    assert abs(time.time() - EPOCH) > 1e6
    assert socket.gethostname() != "a"


def test_blocking_sleeps_threads_and_real_connects_are_refused_inside():
    """time.sleep, Thread.start and a blocking connect would escape virtual time: NotAllowed."""
    errors = []

    async def main():
        for attempt in (
            lambda: time.sleep(1),
            lambda: threading.Thread(target=print).start(),
            lambda: socket.socket().connect(("10.0.0.1", 80)),
        ):
            try:
                attempt()
            except em.NotAllowed as exc:
                errors.append(str(exc).split(" inside")[0])

    sim = em.Simulation(seed=1)
    sim.add_host("a", main)
    sim.run(until=1)
    sim.close()
    assert len(errors) == 3
    assert errors[0] == "time.sleep" and errors[2] == "a blocking connect on a real socket"
    assert errors[1].startswith("starting a thread")


def test_blocking_name_resolution_answers_from_the_simulation():
    """socket.getaddrinfo and gethostbyname resolve hosts, and refuse real names."""
    got = {}

    async def main():
        got["ip"] = socket.gethostbyname("db")
        got["info"] = socket.getaddrinfo("db", 5432, type=socket.SOCK_STREAM)[0][4]
        with pytest.raises(em.NotAllowed, match="outside the simulated network"):
            socket.gethostbyname("example.com")

    sim = em.Simulation(seed=1)
    sim.add_host("db")
    sim.add_host("app", main)
    sim.run(until=1)
    sim.close()
    assert got == {"ip": "10.0.0.1", "info": ("10.0.0.1", 5432)}


def test_system_random_and_secrets_come_from_the_hosts_seeded_stream():
    """random.SystemRandom and secrets draw from the host's own stream: the same seed, the same draws."""
    seen = {}

    async def main(me):
        seen[me] = (random.SystemRandom().random(), secrets.token_hex(8), secrets.randbelow(10**9))

    def run(seed):
        sim = em.Simulation(seed=seed)
        sim.add_host("a", main, me="a")
        sim.add_host("b", main, me="b")
        sim.run(until=1)
        sim.close()
        return dict(seen)

    first = run(1)
    assert run(1) == first
    assert first["a"] != first["b"]
    assert run(2) != first


_KEEP_ALIVE_PROGRAM = """
import asyncio, sys
if sys.argv[1] == "early":
    import aiohttp  # its connector binds `from time import monotonic` before any simulation runs
import emulator as em

async def server():
    from aiohttp import web
    app = web.Application()
    app.router.add_get("/", lambda request: web.json_response({}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", 80).start()
    await asyncio.Event().wait()

async def client():
    import aiohttp
    async with aiohttp.ClientSession() as session:
        for pause in (0, 20):  # 20 s idle: past the connector's 15 s keep-alive, so a new connection
            await asyncio.sleep(pause)
            async with session.get("http://web/") as response:
                await response.read()

sim = em.Simulation(seed=1)
sim.add_host("web", server)
sim.add_host("app", client)
sim.run(until=30)
print(sim.trace_digest(), sum(1 for e in sim.trace.records() if e.get("type") == "tcp.syn"))
sim.close()
"""


def test_a_name_bound_before_the_first_simulation_reads_virtual_time_too(tmp_path):
    """aiohttp imported before any simulation ran (its `from time import monotonic`) gives the same run as after."""
    import subprocess
    import sys

    program = tmp_path / "keep_alive.py"
    program.write_text(_KEEP_ALIVE_PROGRAM.replace("em.Simulation(seed=1)", "em.Simulation(seed=1, keep_trace=True)"))
    runs = {
        when: subprocess.run(
            [sys.executable, str(program), when], capture_output=True, text=True, timeout=120, check=True
        ).stdout.split()
        for when in ("early", "late")
    }
    assert runs["early"] == runs["late"]
    assert runs["late"][1] == "2"  # the idle connection expired in virtual time: a second SYN


def test_rebinding_early_names_loads_no_lazy_module(tmp_path):
    """A module registered to load lazily (importlib.util.LazyLoader) stays unloaded when the sandbox installs."""
    import subprocess
    import sys

    program = (
        "import importlib.util, sys\n"
        "spec = importlib.util.find_spec('json.tool')\n"
        "spec.loader = importlib.util.LazyLoader(spec.loader)\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['lazy_tool'] = module\n"
        "spec.loader.exec_module(module)\n"
        "import emulator as em\n"
        "sim = em.Simulation(seed=1)\n"
        "sim.add_host('a')\n"
        "sim.close()\n"
        "print(type(module).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "_LazyModule"


def test_real_socket_io_is_refused_inside_naming_the_call():
    """A real socket's datagrams, reads and accepts would leave the simulation (or block forever): NotAllowed.

    Found by review: ``sendto`` on a real UDP socket (as a statsd client does)
    sent a real packet to 10.0.0.1, or looked a host name up in the real DNS,
    and a blocking ``recvfrom`` or ``accept`` hung the whole simulation.
    """
    refused = []

    async def main():
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket()
        for name, attempt in (
            ("sendto", lambda: udp.sendto(b"x", ("10.0.0.1", 8125))),
            ("sendto", lambda: udp.sendto(b"x", ("a", 8125))),
            ("sendmsg", lambda: udp.sendmsg([b"x"], [], 0, ("10.0.0.1", 8125))),
            ("recvfrom", lambda: udp.recvfrom(100)),
            ("recvfrom_into", lambda: udp.recvfrom_into(bytearray(10))),
            ("recv", lambda: udp.recv(100)),
            ("recv_into", lambda: udp.recv_into(bytearray(10))),
            ("listen", lambda: tcp.listen()),
            ("accept", lambda: tcp.accept()),
        ):
            try:
                attempt()
                refused.append((name, "not refused"))
            except em.NotAllowed as exc:
                refused.append((name, name in str(exc) and "real socket" in str(exc)))
        udp.close()
        tcp.close()

    sim = em.Simulation(seed=1)
    sim.add_host("a", main)
    sim.run(until=1)
    sim.close()
    calls = ("sendto", "sendto", "sendmsg", "recvfrom", "recvfrom_into", "recv", "recv_into", "listen", "accept")
    assert refused == [(name, True) for name in calls]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # outside a simulation: the real calls
        udp.bind(("127.0.0.1", 0))
        udp.sendto(b"x", udp.getsockname())
        assert udp.recvfrom(10)[0] == b"x"


def test_a_real_socket_bound_then_connected_keeps_its_address_in_the_simulation():
    """aiohttp's local_addr binds the real socket aiohappyeyeballs made: its stand-in connects from that address.

    Found by review: the real socket was bound on the real machine (an address
    of the simulation there failed with EADDRNOTAVAIL) and the stand-in
    connected from an ephemeral port all the same.
    """
    import aiohttp
    from aiohttp import web

    seen = {}

    async def server():
        async def peer(request):
            return web.json_response(request.transport.get_extra_info("peername"))

        app = web.Application()
        app.router.add_get("/", peer)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", 8080).start()
        await asyncio.Event().wait()

    async def client():
        connector = aiohttp.TCPConnector(local_addr=("10.0.0.2", 45000))
        async with aiohttp.ClientSession(connector=connector) as session, session.get("http://web:8080/") as r:
            seen["peer"] = tuple(await r.json())

    sim = em.Simulation(seed=1, latency=0.001)
    sim.add_host("web", server)
    sim.add_host("client", client)
    sim.run(until=5)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert seen == {"peer": ("10.0.0.2", 45000)}


_UNSEEDED = """
import os, random, tempfile, uuid
import emulator as em

async def program(out):
    out.append(random.Random().random())
    seeded = random.Random(7)
    seeded.seed()
    out.append(seeded.random())
    out.append(str(uuid.uuid1()))
    out.append(os.getrandom(8).hex() if hasattr(os, "getrandom") else None)
    out.append(next(tempfile._get_candidate_names()))

out = []
sim = em.Simulation(seed=3)
sim.add_host("h", program, out=out)
sim.run(until=1)
print(out)
"""


def test_unseeded_randoms_uuid1_getrandom_and_tempfile_names_are_the_seeds_too():
    """Found by a review: inside a host an unseeded random.Random(), Random.seed() with no seed, uuid.uuid1(),
    os.getrandom() and tempfile's names came from the OS, so two processes running one seed differed.
    (tempfile makes its name sequence once per process: in one process a second run continues it.)"""
    import subprocess
    import sys

    runs = [
        subprocess.run([sys.executable, "-c", _UNSEEDED], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and runs[0].count(",") == 4, runs
