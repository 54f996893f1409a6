"""Every simulation, nodes alone too, refuses time.sleep, threads and real sockets inside its run."""

import asyncio
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest

import emulator as em
from emulator.errors import CRASH


@pytest.fixture
def server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A real TCP server on 127.0.0.1 (its port, and the connections it accepted), served by a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.recv(1000)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (closing alone does not)
    listener.close()
    thread.join(5)


def _on_socket(kind: socket.SocketKind, call: Callable[[socket.socket], object]) -> Callable[[], object]:
    def attempt():
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.settimeout(0.2)  # unrefused, a read gives up rather than hang the test
            return call(sock)

    return attempt


def _escapes(port: int) -> dict[str, Callable[[], object]]:
    """Each call that would leave virtual time, by name."""
    address = ("127.0.0.1", port)
    return {
        "time.sleep": lambda: time.sleep(0.3),
        "thread": lambda: threading.Thread(target=print).start(),
        "create_connection": lambda: socket.create_connection(address, timeout=1).close(),
        "urlopen": lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close(),
        "connect_ex": _on_socket(socket.SOCK_STREAM, lambda sock: sock.connect_ex(address)),
        "sendto": _on_socket(socket.SOCK_DGRAM, lambda sock: sock.sendto(b"x", address)),
        "recv": _on_socket(socket.SOCK_DGRAM, lambda sock: sock.recv(10)),
        "listen": _on_socket(socket.SOCK_STREAM, lambda sock: sock.listen()),
        "accept": _on_socket(socket.SOCK_STREAM, lambda sock: sock.accept()),
        "gethostbyname": lambda: socket.gethostbyname("example.com"),
        "getaddrinfo": lambda: socket.getaddrinfo("example.com", 80),
    }


_NAMES = sorted(_escapes(0))


class Escaper(em.Node):
    """Makes the call its message names, in the handler or in a task of its own."""

    async def handle_call(self, msg):
        _escapes(msg.body["port"])[msg.body["name"]]()
        return {"type": "call_ok"}

    async def handle_spawn(self, msg):
        self.spawn(self._later(msg.body["port"], msg.body["name"]))

    async def _later(self, port, name):
        await asyncio.sleep(0.1)
        _escapes(port)[name]()


class EscapesAtStart(em.Node):
    """Makes a call in on_start."""

    def __init__(self, *args, port, call, **kwargs):
        super().__init__(*args, **kwargs)
        self.port, self.call = port, call

    async def on_start(self):
        _escapes(self.port)[self.call]()


@pytest.mark.parametrize("name", _NAMES)
def test_a_handler_that_escapes_gets_not_allowed_in_sim_errors(name, server):
    """In a simulation of nodes alone, each escape in a handler raises NotAllowed: sim.errors has it, the caller 13.

    Found by review: time.sleep blocked 0.3 s of real time, threads ran and
    urlopen fetched from a real server, as the sandbox applied to hosts only.
    """
    port, accepted = server
    sim = em.Simulation(seed=1)
    sim.add_node("n1", Escaper)
    client = sim.add_client("c")

    async def call():
        with pytest.raises(em.RPCError, match="NotAllowed") as caught:
            await client.rpc("n1", {"type": "call", "name": name, "port": port}, timeout=1)
        return caught.value.code

    started = time.monotonic()  # wall-clock ok: time.sleep must not block for real
    assert sim.run(call()) == CRASH
    assert time.monotonic() - started < 0.25  # wall-clock ok
    assert [(e.node, type(e.exception)) for e in sim.errors] == [("n1", em.NotAllowed)]
    assert "outside" in str(sim.errors[0].exception)  # virtual time, or the simulated network
    assert accepted == []


@pytest.mark.parametrize("name", ["time.sleep", "thread", "urlopen"])
def test_a_task_on_start_and_the_workload_that_escape_get_not_allowed(name, server):
    """A node's task and on_start land in sim.errors; the workload's run raises NotAllowed."""
    port, accepted = server
    sim = em.Simulation(seed=1)
    sim.add_node("n1", Escaper)
    sim.add_node("n2", EscapesAtStart, port=port, call=name)
    client = sim.add_client("c")

    async def workload():
        client.send("n1", {"type": "spawn", "name": name, "port": port})
        await asyncio.sleep(1)
        _escapes(port)[name]()

    with pytest.raises(em.NotAllowed, match="inside a simulation"):
        sim.run(workload())
    assert sorted((e.node, type(e.exception)) for e in sim.errors) == [("n1", em.NotAllowed), ("n2", em.NotAllowed)]
    assert accepted == []


def test_outside_a_run_sleeps_threads_and_sockets_are_real(server):
    """Before and after sim.run, in the same thread, time.sleep sleeps, threads run and sockets connect."""
    port, accepted = server
    sim = em.Simulation(seed=1)
    sim.add_node("n1", Escaper)
    sim.run(until=1)
    ran = []
    thread = threading.Thread(target=lambda: ran.append(True))
    thread.start()
    thread.join()
    started = time.monotonic()  # wall-clock ok: a real sleep
    time.sleep(0.05)
    assert time.monotonic() - started >= 0.05  # wall-clock ok
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == b"ok"
    assert ran == [True] and len(accepted) == 1


def test_another_thread_during_a_run_sleeps_and_connects_for_real(server):
    """A thread other than the simulation's, while a handler runs, gets the real calls: the check is per thread."""
    port, accepted = server  # one connection, from the other thread
    go, done = threading.Event(), threading.Event()
    got = []

    def elsewhere():
        go.wait(5)
        time.sleep(0.01)
        got.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read())
        inner = threading.Thread(target=lambda: got.append("thread"))
        inner.start()
        inner.join()
        done.set()

    class Waits(em.Node):
        async def handle_wait(self, msg):
            go.set()
            return {"type": "wait_ok", "done": done.wait(5)}  # blocks the run while the other thread works

    thread = threading.Thread(target=elsewhere)
    thread.start()
    sim = em.Simulation(seed=1)
    sim.add_node("n1", Waits)
    client = sim.add_client("c")
    reply = sim.run(client.rpc("n1", {"type": "wait"}, timeout=1))
    thread.join(5)
    assert reply["done"] is True and got == [b"ok", "thread"] and sim.errors == [] and len(accepted) == 1


def test_names_on_the_simulated_loopback_still_resolve_in_a_node():
    """Inside a node, getaddrinfo answers localhost and 127.0.0.1 from the simulated network (nothing is looked up)."""
    got = []

    class Resolves(em.Node):
        async def on_start(self):
            got.append(socket.gethostbyname("localhost"))
            got.append(socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)[0][4])

    sim = em.Simulation(seed=1)
    sim.add_node("n1", Resolves)
    sim.run(until=1)
    assert got == ["127.0.0.1", ("127.0.0.1", 80)] and sim.errors == []


def test_a_virtual_loop_on_its_own_is_not_confined():
    """Only a Simulation's loop refuses: a VirtualLoop used on its own (asyncio's conformance run) does not."""
    from emulator.loop import VirtualLoop

    em.Simulation(seed=1)  # the patches are in place
    loop = VirtualLoop()  # type: ignore[abstract]

    async def sleeps():
        time.sleep(0.001)
        return "slept"

    assert loop.run_until_complete(sleeps()) == "slept"
    loop.close()


def test_nodes_alone_read_the_machines_clock_and_random_even_after_a_host():
    """Only hosts get the sandbox's answers: in a simulation of nodes, time.time and random stay the machine's."""
    import random

    hosts = em.Simulation(seed=1)
    hosts.add_host("a")  # installs the sandbox's answers for the process
    hosts.run(until=1)
    hosts.close()
    seen = []

    class Reads(em.Node):
        async def on_start(self):
            await asyncio.sleep(5)
            seen.append((time.time(), time.monotonic(), random.random()))  # wall-clock ok: what is asserted

    def run():
        sim = em.Simulation(seed=1)
        sim.add_node("n1", Reads)
        before = time.time()  # wall-clock ok
        sim.run(until=10)
        return before

    before = run()
    run()
    assert before <= seen[0][0] <= time.time()  # wall-clock ok: not EPOCH + 5
    assert seen[0][1] != 5.0 and seen[0][2] != seen[1][2]
