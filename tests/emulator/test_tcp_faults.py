"""A TCP stream under random schedules of partitions, heals, holds, pauses and crashes, over hostile links.

Whatever the network does to segments (loses, duplicates, reorders, holds
them and lets them go at once), the application reads a prefix of what the
peer wrote: in order, each byte once. While no fault outlasts the user
timeout and no end crashes, it reads all of it.
"""

import asyncio

from hypothesis import example, given, settings
from hypothesis import strategies as st

import emulator as em

#: The link and pause actions of _run_schedule between hosts "a" and "b".
_ACTIONS_AB = ["partition", "oneway_to_a", "oneway_to_b", "heal", "hold", "release", "pause_a", "resume_a"]
#: link settings for the property tests below: jittered or heavy-tailed latency, loss, copies, reordering
_HOSTILE_LINKS = st.fixed_dictionaries(
    {
        "latency": st.sampled_from([em.Uniform(0.001, 0.02), em.Pareto(0.002, 1.2, cap=1.5)]),
        "loss": st.sampled_from([0.0, 0.1]),
        "duplicate": st.sampled_from([0.0, 0.3]),
        "reorder": st.sampled_from([0.0, 0.5, 1.0]),
        "fifo": st.booleans(),
    }
)
_ACTIONS = [
    "partition",
    "oneway_to_sink",
    "oneway_to_source",
    "heal",
    "hold",
    "release",
    "pause_sink",
    "resume_sink",
    "crash_sink",
    "crash_source",
]


def _payload(n: int, salt: int) -> bytes:
    return bytes((i * 31 + salt) % 251 for i in range(n))


def _run(seed, size, chunk, link, schedule, user_timeout):
    payload = _payload(size, seed % 7)
    seen: dict = {"received": bytearray(), "chunks": [], "sink_end": None, "source_end": None}

    async def sink():
        async def handle(reader, writer):
            try:
                while data := await reader.read(4096):
                    seen["chunks"].append(bytes(data))
                    seen["received"] += data
                seen["sink_end"] = "eof"
            except OSError as exc:
                seen["sink_end"] = type(exc).__name__
            writer.close()

        await (await asyncio.start_server(handle, "0.0.0.0", 9000)).serve_forever()

    async def source():
        if seen["source_end"] is not None:
            return  # a restarted source does not connect again
        seen["source_end"] = "started"
        try:
            _reader, writer = await asyncio.open_connection("sink", 9000)
            for i in range(0, size, chunk):
                writer.write(payload[i : i + chunk])
                await writer.drain()
            writer.write_eof()
            await writer.drain()
            seen["source_end"] = "sent"
        except OSError as exc:
            seen["source_end"] = type(exc).__name__

    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.02), **link)
    sim.hosts.tcp.user_timeout = user_timeout
    sim.add_host("sink", sink)
    sim.add_host("source", source)
    t = _run_schedule(sim, schedule, "sink", "source")
    crashed = any(action.startswith("crash_") for _, action in schedule)
    sim.network.heal()
    sim.network.release("sink", "source")
    sim.resume("sink")
    sim.run(until=t + 2 * user_timeout + 200)
    errors = list(sim.errors)
    seen["digest"] = sim.trace_digest()
    sim.close()
    return payload, seen, crashed, errors


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(1, 60_000),
    chunk=st.integers(1, 20_000),
    link=st.fixed_dictionaries(
        {
            "loss": st.sampled_from([0.0, 0.1]),
            "duplicate": st.sampled_from([0.0, 0.3]),
            "reorder": st.sampled_from([0.0, 0.5, 1.0]),
            "fifo": st.booleans(),
        }
    ),
    schedule=st.lists(st.tuples(st.floats(0.0, 3.0), st.sampled_from(_ACTIONS)), max_size=8),
)
@example(  # found by this test: a late copy of the SYN opened a second connection after the first ended
    seed=123, size=1, chunk=1, link={"loss": 0.0, "duplicate": 0.3, "reorder": 1.0, "fifo": False}, schedule=[]
)
def test_the_application_reads_a_prefix_of_the_stream_in_order_once_under_any_fault_schedule(
    seed, size, chunk, link, schedule
):
    """Bytes read are always a prefix of bytes written; with no crash and short faults, all of them.

    And the run is a function of its seed and schedule: run again, the same
    trace digest and the same reads.
    """
    user_timeout = 30.0
    payload, seen, crashed, errors = _run(seed, size, chunk, link, schedule, user_timeout)
    _, again, _, _ = _run(seed, size, chunk, link, schedule, user_timeout)
    assert again == seen
    received = bytes(seen["received"])
    assert received == payload[: len(received)], "the reader saw bytes out of order, twice, or never written"
    assert errors == []
    if seen["sink_end"] == "eof":
        assert received == payload, "EOF came before every byte written"
    # Faults last at most 8 * 3 s, well under the user timeout: only a crash can end the stream early.
    if not crashed:
        assert seen["source_end"] == "sent"
        assert seen["sink_end"] == "eof"
        assert received == payload


@settings(max_examples=30, deadline=None)
@example(seed=666, connections=4, duplicate=0.6, reorder=1.0)  # found by this test
@given(
    seed=st.integers(0, 2**32 - 1),
    connections=st.integers(1, 4),
    duplicate=st.sampled_from([0.3, 0.6]),
    reorder=st.sampled_from([0.5, 1.0]),
)
def test_a_late_copy_of_a_syn_never_makes_a_connection_nobody_opened(seed, connections, duplicate, reorder):
    """A server accepts each connection once: a duplicated SYN arriving after its connection ended is ignored.

    Real TCP tells the old SYN from a new one by its initial sequence
    number; capsim by the connection's id. A copy arriving while a newer
    connection on the same ports is open must not reset that one either.
    """
    accepted, ends = [], []

    async def server():
        async def handle(reader, writer):
            accepted.append(writer.get_extra_info("peername"))
            try:
                ends.append(await reader.read())
            except OSError as exc:
                ends.append(type(exc).__name__)
            writer.close()

        await (await asyncio.start_server(handle, "0.0.0.0", 9000)).serve_forever()

    async def client():
        for i in range(connections):
            _reader, writer = await asyncio.open_connection("server", 9000, local_addr=("0.0.0.0", 40000))
            writer.write(b"connection %d" % i)
            writer.write_eof()
            await _reader.read()
            writer.close()
            await asyncio.sleep(0.05)

    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.02), duplicate=duplicate, reorder=reorder, fifo=False)
    sim.add_host("server", server)
    sim.add_host("client", client)
    sim.run(until=100)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert len(accepted) == connections, f"{len(accepted)} accepted for {connections} opened: {ends}"
    assert ends == [b"connection %d" % i for i in range(connections)]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lines=st.lists(st.binary(min_size=0, max_size=3000).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=12),
    duplicate=st.sampled_from([0.0, 0.3]),
    reorder=st.sampled_from([0.0, 0.5, 1.0]),
    loss=st.sampled_from([0.0, 0.1]),
    schedule=st.lists(
        st.tuples(st.floats(0.0, 2.0), st.sampled_from(["partition", "heal", "hold", "release"])), max_size=6
    ),
)
def test_both_directions_of_an_echo_stay_exact_under_link_faults_and_partitions(
    seed, lines, duplicate, reorder, loss, schedule
):
    """A client writing and reading at once gets back exactly what it sent, line by line, after any short faults."""
    got: dict = {"lines": []}

    async def echo():
        async def handle(reader, writer):
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
            writer.close()

        await (await asyncio.start_server(handle, "0.0.0.0", 7)).serve_forever()

    async def client():
        reader, writer = await asyncio.open_connection("echo", 7)

        async def send():
            for line in lines:
                writer.write(line)
                await writer.drain()
            writer.write_eof()

        sending = asyncio.ensure_future(send())
        while line := await reader.readline():
            got["lines"].append(line)
        await sending
        got["done"] = True

    sim = em.Simulation(
        seed=seed, latency=em.Uniform(0.001, 0.02), loss=loss, duplicate=duplicate, reorder=reorder, fifo=False
    )
    sim.hosts.tcp.user_timeout = 60.0
    sim.add_host("echo", echo)
    sim.add_host("client", client)
    t = _run_schedule(sim, schedule, "echo", "client")
    sim.network.heal()
    sim.network.release("echo", "client")
    sim.run(until=t + 300)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert got["lines"] == lines
    assert got.get("done")


def _run_schedule(sim: em.Simulation, schedule: list[tuple[float, str]], a: str, b: str) -> float:
    """Run ``sim`` through ``schedule`` ((gap, action) pairs, each action after its gap) between hosts a and b.

    Actions: partition, oneway_to_a, oneway_to_b, heal, hold, release (of the a-b link), pause_a, resume_a,
    crash_NAME (a crash and a restart). Returns the time of the last action.
    """
    t = 0.0
    for gap, action in schedule:
        t += gap
        sim.run(until=t)
        if action == "partition":
            sim.network.partition([a], [b])
        elif action == f"oneway_to_{a}":
            sim.network.partition_oneway([b], [a])
        elif action == f"oneway_to_{b}":
            sim.network.partition_oneway([a], [b])
        elif action == "heal":
            sim.network.heal()
        elif action == "hold":
            sim.network.hold(a, b)
        elif action == "release":
            sim.network.release(a, b)
        elif action == f"pause_{a}":
            sim.pause(a)
        elif action == f"resume_{a}":
            sim.resume(a)
        else:
            name = action.removeprefix("crash_")
            sim.crash(name)
            sim.restart(name)
    return t


def _slow_answer(seed, size, link, answer_after, ack_delay, user_timeout):
    """A client writes ``size`` bytes and a FIN, then waits; the server answers ``answer_after`` seconds later."""
    seen: dict = {}

    async def server():
        async def handle(reader, writer):
            data = await reader.read()
            await asyncio.sleep(answer_after)
            writer.write(b"%d" % len(data))
            writer.close()

        await (await asyncio.start_server(handle, "0.0.0.0", 9)).serve_forever()

    async def client():
        reader, writer = await asyncio.open_connection("server", 9)
        if ack_delay is not None:  # the server's ACKs come back slower than the RTO: a spurious timeout
            sim.network.set_link_oneway("server", "client", latency=ack_delay)
        writer.write(b"x" * size)
        writer.write_eof()
        try:
            seen["reply"] = await reader.read()
        except OSError as exc:
            seen["reply"] = type(exc).__name__

    sim = em.Simulation(seed=seed, **link)
    sim.hosts.tcp.user_timeout = user_timeout
    sim.add_host("server", server)
    sim.add_host("client", client)
    sim.run(until=answer_after + 4 * user_timeout)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    return seen.get("reply")


def test_a_late_ack_of_a_retransmitted_fin_ends_the_half_close():
    """The ACK of data and FIN arrives after the RTO rewound the sender: the FIN counts as acknowledged.

    Found by review: the rewind forgot the FIN's sequence number, the late ACK
    then moved the FIN one byte on, the peer never acknowledged that one, and
    the client's half-closed connection timed out (ETIMEDOUT) while its server
    was alive and about to answer.
    """
    reply = _slow_answer(1, 3000, {"latency": 0.01}, answer_after=60, ack_delay=1.0, user_timeout=30)
    assert reply == b"3000"


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(1, 20_000),
    link=st.fixed_dictionaries(
        {
            "latency": st.sampled_from([em.Uniform(0.001, 0.02), em.Pareto(0.005, 1.1, cap=2.0)]),
            "loss": st.sampled_from([0.0, 0.1]),
            "duplicate": st.sampled_from([0.0, 0.3]),
            "reorder": st.sampled_from([0.0, 0.5]),
            "fifo": st.booleans(),
        }
    ),
    ack_delay=st.sampled_from([None, 0.5, 1.5]),
)
def test_a_half_closed_connection_waits_for_an_answer_longer_than_the_user_timeout(seed, size, link, ack_delay):
    """Nothing unacknowledged, nothing lost for good: a peer that answers late is still answered, not ETIMEDOUT.

    The user timeout bounds how long data (or a FIN) stays unacknowledged, not
    how long a live peer may stay silent; heavy-tailed latency, copies and
    spurious retransmissions included.
    """
    assert _slow_answer(seed, size, link, answer_after=50, ack_delay=ack_delay, user_timeout=20) == b"%d" % size


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(0, 30_000),
    link=_HOSTILE_LINKS,
    schedule=st.lists(
        st.tuples(
            st.floats(0.0, 2.0),
            st.sampled_from(_ACTIONS_AB),
        ),
        max_size=6,
    ),
    skew=st.sampled_from([0.0, -30.0, 3600.0]),
)
def test_both_ends_close_cleanly_and_forget_the_connection_under_short_faults(seed, size, link, schedule, skew):
    """A request, a reply, both ends closing: each reads the other's bytes exactly, then the connection is gone.

    No error reaches either program, and once it is over neither kernel keeps
    a connection (no end waits forever for a FIN or an ACK). A skewed clock
    changes nothing: TCP's timers run on the loop's time.
    """
    payload = _payload(size, seed % 5)
    seen: dict = {}

    async def a():  # the server
        async def handle(reader, writer):
            try:
                data = await reader.read()
                writer.write(data[::-1])
                writer.close()
                await writer.wait_closed()
                seen["a"] = data
            except OSError as exc:
                seen["a"] = type(exc).__name__

        await (await asyncio.start_server(handle, "0.0.0.0", 9)).serve_forever()

    async def b():  # the client
        try:
            reader, writer = await asyncio.open_connection("a", 9)
            writer.write(payload)
            writer.write_eof()
            seen["b"] = await reader.read()
            writer.close()
            await writer.wait_closed()
        except OSError as exc:
            seen["b"] = type(exc).__name__

    sim = em.Simulation(seed=seed, **link)
    sim.hosts.tcp.user_timeout = 60.0
    sim.add_host("a", a)
    sim.add_host("b", b)
    sim.skew("b", skew)
    t = _run_schedule(sim, schedule, "a", "b")
    sim.network.heal()
    sim.network.release("a", "b")
    sim.resume("a")
    sim.run(until=t + 400)
    left = {name: list(sim.hosts.live[name].kernel.tcbs.values()) for name in ("a", "b")}
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert seen == {"a": payload, "b": payload[::-1]}
    assert left == {"a": [], "b": []}


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    clients=st.integers(1, 6),
    link=_HOSTILE_LINKS,
    schedule=st.lists(
        st.tuples(st.floats(0.0, 2.0), st.sampled_from([*_ACTIONS_AB, "crash_a", "crash_b"])), max_size=6
    ),
)
def test_every_accepted_connection_was_opened_once_and_every_client_hears_its_own_echo_or_an_error(
    seed, clients, link, schedule
):
    """Clients at once against a small backlog (3), under link faults, flapping cuts, pauses and crashes.

    A server accepts only connections clients opened, each once per
    incarnation; a client reads back exactly its own line or gets an error;
    without a crash none is left waiting (after one, a client whose reset was
    lost waits, as on Linux without keepalive).
    """
    seen: dict = {"accepted": [], "clients": {}}

    async def a():
        async def handle(reader, writer):
            try:
                line = await reader.readline()
                seen["accepted"].append(line)
                writer.write(line)
                await writer.drain()
                writer.close()
            except OSError:
                pass

        await (await asyncio.start_server(handle, "0.0.0.0", 9, backlog=3)).serve_forever()

    async def b():
        async def one(i):
            key = b"client %d\n" % i
            if key in seen["clients"]:
                return  # a restarted client does not connect again
            seen["clients"][key] = "waiting"
            try:
                reader, writer = await asyncio.open_connection("a", 9)
                writer.write(key)
                got = await reader.readline()
                seen["clients"][key] = "echo" if got == key else got
                writer.close()
            except OSError as exc:
                seen["clients"][key] = type(exc).__name__

        await asyncio.gather(*(one(i) for i in range(clients)))

    sim = em.Simulation(seed=seed, **link)
    sim.hosts.tcp.user_timeout = 30.0
    sim.add_host("a", a)
    sim.add_host("b", b)
    t = _run_schedule(sim, schedule, "a", "b")
    sim.network.heal()
    sim.network.release("a", "b")
    sim.resume("a")
    sim.run(until=t + 400)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    crashed = any(action.startswith("crash_") for _, action in schedule)
    accepted = [line for line in seen["accepted"] if line]
    assert set(accepted) <= set(seen["clients"]), "a connection no client opened"
    if not any(action == "crash_a" for _, action in schedule):
        assert len(accepted) == len(set(accepted)), "a connection accepted twice"
    for key, outcome in seen["clients"].items():
        assert outcome in ("echo", "waiting") or outcome.endswith("Error"), (key, outcome)
        assert outcome != "waiting" or crashed, f"{key!r} left waiting with no crash"


#: The link and pause actions of _run_schedule between a server and a client: no crash (_abandoned crashes).
_ACTIONS_SERVER = ["partition", "oneway_to_server", "oneway_to_client", "heal", "hold", "release"]
_ACTIONS_SERVER += ["pause_server", "resume_server"]


def _abandoned(seed, link, connections, before, after, restart):
    """How each server-side connection of a client that crashed ended, and the server's connections left at the end.

    The server's listener has SO_KEEPALIVE (10 s idle, 3 probes 2 s apart) and a 30 s user timeout; the client
    opens ``connections`` connections, exchanges a line on each and idles. After the ``before`` schedule the client
    crashes (and restarts, opening nothing, if ``restart``); after the ``after`` schedule every fault ends.
    """
    import socket

    ends: dict[int, str | None] = {}

    async def server():
        async def handle(reader, writer):
            me = len(ends)
            ends[me] = None
            try:
                while line := await reader.readline():
                    writer.write(line)
                    await writer.drain()
                ends[me] = "eof"
            except OSError as exc:
                ends[me] = type(exc).__name__
            writer.close()

        srv = await asyncio.start_server(handle, "0.0.0.0", 7)
        sock = srv.sockets[0]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in ((socket.TCP_KEEPIDLE, 10), (socket.TCP_KEEPINTVL, 2), (socket.TCP_KEEPCNT, 3)):
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
        await srv.serve_forever()

    restarted = []

    async def client():
        if restarted:
            await asyncio.Event().wait()  # the restarted client opens nothing
        streams = []
        for i in range(connections):
            try:
                reader, writer = await asyncio.open_connection("server", 7)
                writer.write(b"line %d\n" % i)
                await reader.readline()
                streams.append(writer)
            except OSError:
                pass
        await asyncio.Event().wait()

    sim = em.Simulation(seed=seed, **link)
    sim.hosts.tcp.user_timeout = 30.0
    sim.add_host("server", server)
    sim.add_host("client", client)
    t = _run_schedule(sim, before, "server", "client")
    sim.crash("client")
    if restart:
        restarted.append(True)
        sim.restart("client")
    _run_schedule(
        sim, [(t + gap if i == 0 else gap, action) for i, (gap, action) in enumerate(after)], "server", "client"
    )
    sim.network.heal()
    sim.network.release("server", "client")
    sim.resume("server")
    sim.run(until=sim.now + 30 + 16 + 130)  # user timeout, keep-alive, the longest retransmission backoff
    left = sorted(repr(tcb) for tcb in sim.host("server").incarnation.kernel.tcbs.values())
    errors = list(sim.errors)
    sim.close()
    return ends, left, errors


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    link=_HOSTILE_LINKS,
    connections=st.integers(1, 3),
    before=st.lists(st.tuples(st.floats(0.0, 2.0), st.sampled_from(_ACTIONS_SERVER)), max_size=5),
    after=st.lists(st.tuples(st.floats(0.0, 20.0), st.sampled_from(_ACTIONS_SERVER)), max_size=5),
    restart=st.booleans(),
)
@example(  # the crash's resets are cut off: keep-alive finds the dead client (ETIMEDOUT), or its restarted self resets
    seed=5,
    link={"latency": em.Uniform(0.001, 0.02), "loss": 0.0, "duplicate": 0.0, "reorder": 0.0, "fifo": False},
    connections=3,
    before=[(1.0, "partition")],
    after=[(5.0, "heal")],
    restart=False,
)
@example(
    seed=5,
    link={"latency": em.Uniform(0.001, 0.02), "loss": 0.1, "duplicate": 0.3, "reorder": 0.5, "fifo": False},
    connections=3,
    before=[(1.0, "pause_server")],
    after=[(50.0, "resume_server")],
    restart=True,
)
def test_a_crashed_clients_connections_all_end_at_the_server_under_any_faults(
    seed, link, connections, before, after, restart
):
    """The hosts docstring's promise: a peer of a crashed host learns of it, by the crash's reset if it gets
    through, else by the restarted host's reset, its user timeout or keep-alive, so once the faults end every
    server-side connection of the crashed client ends with an error or EOF, and the server holds no connection."""
    ends, left, errors = _abandoned(seed, link, connections, before, after, restart)
    assert errors == []
    assert all(end in ("eof", "ConnectionResetError", "TimeoutError", "BrokenPipeError") for end in ends.values()), ends
    assert left == []
