"""TCP's timers: retransmission through a partition, user timeout, SYN retries and keepalive (emulator/tcptimers.py)."""

import asyncio
import errno
import functools
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emulator as em
from emulator.tcp import TcpSettings
from tests.common.hosts import echo_server, now


def test_a_partition_stalls_the_stream_and_a_heal_resumes_it():
    """Bytes written during a short partition arrive after the heal, in order, on the same connection."""
    got = []

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        for i in range(6):
            writer.write(b"line %d\n" % i)
            got.append((await reader.readline(), round(now(), 3)))
            await asyncio.sleep(1)

    sim = em.Simulation(seed=1, latency=0.005)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=1.5)
    sim.network.partition(["server"], ["client"])
    sim.run(until=5)
    assert len(got) == 2  # stalled
    sim.network.heal()
    sim.run(until=20)
    sim.close()
    assert [line for line, _ in got] == [b"line %d\n" % i for i in range(6)]
    assert 5 < got[2][1] < 10  # the retransmission after the heal carried it


def test_when_a_partition_outlasts_the_user_timeout_both_sending_ends_time_out():
    """Both ends sending: each gives up with ETIMEDOUT at the user timeout (drain() says "Connection lost")."""
    seen = {"a": [], "b": []}

    async def chatter(me, peer=None):
        async def talk(reader, writer):
            try:
                while True:
                    writer.write(b"x" * 100)
                    await writer.drain()
                    await asyncio.sleep(0.1)
            except ConnectionResetError:  # asyncio's drain() after the transport died: the cause is the reader's
                exc = reader.exception()
                seen[me].append((type(exc).__name__, exc.errno, round(now(), 1)))

        if peer is None:
            await (await asyncio.start_server(talk, "0.0.0.0", 9)).serve_forever()
        await talk(*await asyncio.open_connection(peer, 9))

    sim = em.Simulation(seed=1)
    sim.hosts.tcp.user_timeout = 60.0  # configurable; Linux's default is 924.6 s
    sim.add_host("b", chatter, me="b")
    sim.add_host("a", chatter, me="a", peer="b")
    sim.run(until=1)
    sim.network.partition(["a"], ["b"])
    sim.run(until=200)
    sim.close()
    assert seen == {"a": [("TimeoutError", errno.ETIMEDOUT, 61.0)], "b": [("TimeoutError", errno.ETIMEDOUT, 61.0)]}


def test_a_socket_can_set_its_own_user_timeout():
    """setsockopt(TCP_USER_TIMEOUT, ms) overrides the default for that connection."""
    seen = {}

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
        await asyncio.sleep(1)
        writer.write(b"ping\n")
        try:
            await reader.readline()
        except TimeoutError:
            seen["at"] = round(now(), 1)

    sim = em.Simulation(seed=1)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=0.5)
    sim.network.isolate("server")
    sim.run(until=100)
    sim.close()
    assert seen["at"] == 6.0


def test_connecting_to_a_host_that_is_down_times_out_after_the_syn_retries():
    """A crashed host answers nothing: connect() gives up after 1 + 2 + ... + 64 = 127 s, like Linux."""
    seen = {}

    async def client():
        try:
            await asyncio.open_connection("server", 7)
        except TimeoutError as exc:
            seen["at"], seen["errno"] = round(now(), 3), exc.errno

    sim = em.Simulation(seed=1)
    sim.add_host("server", echo_server)
    sim.crash("server")
    sim.add_host("client", client)
    sim.run(until=300)
    sim.close()
    assert seen == {"at": 127.0, "errno": errno.ETIMEDOUT}


@pytest.mark.parametrize(("user_timeout_ms", "gives_up_at"), [(5_000, 5.0), (None, 127.0), (200_000, 127.0)])
def test_a_connect_through_a_partition_gives_up_at_its_tcp_user_timeout_or_the_syn_retries(
    user_timeout_ms, gives_up_at
):
    """Linux (5.4 on): a connect whose socket has TCP_USER_TIMEOUT gives up at that timeout or after the SYN
    retries, whichever comes first; found by review, capsim waited for the SYN retries (127 s) whatever it was."""
    seen = {}

    async def client():
        sock = socket.socket()
        sock.setblocking(False)
        if user_timeout_ms is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("server", 7))
        except TimeoutError as exc:
            seen["at"], seen["errno"] = round(now(), 3), exc.errno

    sim = em.Simulation(seed=1)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.network.partition(["server"], ["client"])
    sim.run(until=300)
    sim.close()
    assert seen == {"at": gives_up_at, "errno": errno.ETIMEDOUT}


def _short_keepalive(sock) -> None:
    """SO_KEEPALIVE on, with probes after 10 s idle, every 2 s, 3 of them (Linux: 7200 s, 75 s, 9)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 2)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


def test_keepalive_finds_a_dead_peer():
    """With SO_KEEPALIVE and short probes an idle connection to a vanished peer times out."""
    seen = {}

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        sock = writer.get_extra_info("socket")
        _short_keepalive(sock)
        try:
            await reader.readline()
        except TimeoutError:
            seen["at"] = round(now())

    sim = em.Simulation(seed=1)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=1)
    sim.network.isolate("server")
    sim.run(until=100)
    sim.close()
    assert seen["at"] == 16  # idle 10 s after the last segment, then 3 probes 2 s apart


def test_by_default_a_partitioned_sender_times_out_after_linux_tcp_retries2():
    """With no settings changed, unacknowledged data is given up on 924.6 s after it was first sent.

    That is the documented default of TcpSettings.user_timeout: Linux's tcp_retries2 = 15.
    """
    seen = {}

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        await asyncio.sleep(1)
        seen["sent"] = now()
        writer.write(b"into the void\n")
        try:
            await reader.readline()
        except OSError as exc:
            seen["error"], seen["at"] = exc, now()

    sim = em.Simulation(seed=1, latency=0.005)
    assert sim.hosts.tcp.user_timeout == TcpSettings().user_timeout == 924.6
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=0.5)
    sim.network.partition(["server"], ["client"])
    sim.run(until=2000)
    sim.close()
    assert seen["error"].errno == errno.ETIMEDOUT
    assert seen["at"] - seen["sent"] == pytest.approx(924.6, abs=0.2)


def _half_open(server, until: float) -> em.Simulation:
    """Run ``server`` and a client whose one SYN (syn_retries 0, given up on after 2 s) arrives while no SYN-ACK
    comes back (a one-way cut), to ``until``; the simulation, closed."""

    async def client():
        with pytest.raises(TimeoutError):
            await asyncio.open_connection("server", 9)

    sim = em.Simulation(seed=1)
    sim.hosts.tcp.syn_retries = 0
    sim.add_host("server", server)
    sim.add_host("client", client)
    sim.network.partition_oneway(["server"], ["client"])  # the SYN arrives, no SYN-ACK comes back
    sim.run(until=until)
    sim.close()
    return sim


def test_a_half_open_connection_is_dropped_after_the_synack_retries():
    """A SYN-ACK that never gets through is retransmitted at 1, 3, 7, 15 and 31 s; at 63 s the server drops it."""
    seen = {}

    async def server():
        kernel = asyncio.get_running_loop().world.current()
        await asyncio.start_server(lambda r, w: None, "0.0.0.0", 9)
        for at in (62, 64):
            await asyncio.sleep(at - now())
            seen[at] = sorted(tcb.state for tcb in kernel.tcbs.values())

    sim = _half_open(server, until=70)
    assert sim.hosts.tcp.synack_retries == 5
    assert seen == {62: ["SYN_RCVD"], 64: []}


def test_a_listeners_tcp_syncnt_sets_its_half_open_connections_synack_retries():
    """As on Linux (the listener's icsk_syn_retries bounds its request sockets' SYN-ACKs): with TCP_SYNCNT 2 a
    SYN-ACK that never gets through is sent again at 1 and 3 s, and at 7 s the half-open connection is dropped."""
    seen = {}

    async def server():
        kernel = asyncio.get_running_loop().world.current()
        srv = await asyncio.start_server(lambda r, w: None, "0.0.0.0", 9)
        srv.sockets[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 2)
        for at in (6.5, 7.5):
            await asyncio.sleep(at - now())
            seen[at] = sorted(tcb.state for tcb in kernel.tcbs.values())

    _half_open(server, until=10)
    assert seen == {6.5: ["SYN_RCVD"], 7.5: []}


def test_a_closed_socket_waits_fin_timeout_for_the_peers_fin_then_forgets_the_connection():
    """FIN_WAIT_2: after close() and the ACK of its FIN, a peer that never closes is given 60 s, then dropped."""
    seen = {}

    async def server():
        async def keep_open(reader, writer):
            await asyncio.Event().wait()  # never reads, never closes

        await (await asyncio.start_server(keep_open, "0.0.0.0", 9)).serve_forever()

    async def client():
        kernel = asyncio.get_running_loop().world.current()
        _, writer = await asyncio.open_connection("server", 9)
        writer.close()
        await writer.wait_closed()
        closed = now()
        for after in (59, 61):
            await asyncio.sleep(closed + after - now())
            seen[after] = [tcb.orphan for tcb in kernel.tcbs.values()]

    sim = em.Simulation(seed=1)
    sim.add_host("server", server)
    sim.add_host("client", client)
    sim.run(until=70)
    sim.close()
    assert sim.hosts.tcp.fin_timeout == 60.0
    assert seen == {59: [True], 61: []}


def _isolated_client_times_out(client_main, server_main=echo_server):
    """When the client's read fails after the server is isolated at 0.5 s, and with what."""
    seen: dict = {}
    sim = em.Simulation(seed=1)
    sim.add_host("server", server_main)
    sim.add_host("client", client_main, seen=seen)
    sim.run(until=0.5)
    sim.network.isolate("server")
    sim.run(until=300)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    return seen


def test_options_set_on_a_socket_before_it_connects_apply_to_its_connection():
    """A real socket given options, then connected with loop.sock_connect: its simulated stand-in keeps them.

    Found by review: the stand-in started with default options, so a
    TCP_USER_TIMEOUT or SO_KEEPALIVE set before connecting (the usual place)
    was silently ignored.
    """

    async def client(seen, option):
        sock = socket.socket()
        sock.setblocking(False)
        if option == "user_timeout":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        await asyncio.get_running_loop().sock_connect(sock, ("server", 7))
        reader, writer = await asyncio.open_connection(sock=sock)
        await asyncio.sleep(1)
        if option == "user_timeout":
            writer.write(b"ping\n")
        else:  # keep-alive's timing, given on the connected socket
            sock = writer.get_extra_info("socket")
            _short_keepalive(sock)
        try:
            await reader.readline()
        except TimeoutError:
            seen["at"] = round(now(), 1)

    assert _isolated_client_times_out(functools.partial(client, option="user_timeout")) == {"at": 6.0}
    assert _isolated_client_times_out(functools.partial(client, option="keepalive")) == {"at": 16.0}


def test_an_accepted_connection_inherits_the_listeners_user_timeout():
    """TCP_USER_TIMEOUT set on a listening socket applies to the connections it accepts, as on Linux."""

    async def server(port=7):
        async def handle(reader, writer):
            await reader.readline()
            await asyncio.sleep(1)
            writer.write(b"x" * 100)  # into the isolation: unacknowledged from 1.1 s on
            try:
                await reader.readline()
            except TimeoutError:
                seen["at"] = round(now(), 1)

        srv = await asyncio.start_server(handle, "0.0.0.0", port)
        srv.sockets[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
        await srv.serve_forever()

    async def client(seen):
        _reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"hello\n")
        await asyncio.sleep(1000)

    seen: dict = {}
    _isolated_client_times_out(client, server)
    assert seen == {"at": 6.0}


def test_keepalive_sends_no_probe_while_data_waits_for_its_ack():
    """As on Linux (its keep-alive timer: 'it is alive without keepalive' while packets are out or queued): with
    data unacknowledged, keep-alive probes nothing and the retransmission timer decides, so a write into a partition
    fails at the user timeout (60 s here), not after keep-alive's 10 + 3 x 2 s of silence."""

    async def client(seen):
        reader, writer = await asyncio.open_connection("server", 7)
        sock = writer.get_extra_info("socket")
        _short_keepalive(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 60_000)
        await asyncio.sleep(1)  # the server is cut off at 0.5 s
        writer.write(b"ping\n")
        try:
            await reader.readline()
        except TimeoutError:
            seen["at"] = round(now(), 1)

    assert _isolated_client_times_out(client) == {"at": 61.0}


@pytest.mark.parametrize(("user_timeout_ms", "gives_up_at"), [(None, 16.0), (30_000, 30.0), (5_000, 12.0)])
def test_keepalive_on_a_socket_with_tcp_user_timeout_gives_up_by_that_timeout_not_by_the_probe_count(
    user_timeout_ms, gives_up_at
):
    """Linux: with TCP_USER_TIMEOUT set, an idle connection's keep-alive gives up once that long has passed since
    the peer was last heard and a probe is out, whatever keepalive_probes says; without it, after the probes
    (10 s idle, then 3 probes 2 s apart: 16 s). A 5 s timeout ends it at the first check after a probe, 12 s."""

    async def client(seen):
        reader, writer = await asyncio.open_connection("server", 7)
        sock = writer.get_extra_info("socket")
        _short_keepalive(sock)
        if user_timeout_ms is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)
        try:
            await reader.readline()  # idle: nothing is sent, so only keep-alive can tell the server is gone
        except TimeoutError:
            seen["at"] = round(now())

    assert _isolated_client_times_out(client) == {"at": gives_up_at}


def test_keepalive_giving_up_resets_the_peer_when_the_network_lets_the_reset_through():
    """Linux's keep-alive timer sends a reset when it gives up (tcp_send_active_reset, then ETIMEDOUT). With only
    the server's direction cut, the client's probes go unanswered, it gives up 16 s after it last heard the server with
    ETIMEDOUT, and its
    reset reaches the server, which reads ECONNRESET; found by review, capsim gave up quietly (the server waited
    on, for a connection nobody had any more)."""
    seen = {}

    async def server():
        async def handle(reader, writer):
            try:
                await reader.read()
                seen["server"] = ("eof", round(now(), 2))
            except OSError as exc:
                seen["server"] = (type(exc).__name__, exc.errno, round(now(), 2))

        await (await asyncio.start_server(handle, "0.0.0.0", 7)).serve_forever()

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        sock = writer.get_extra_info("socket")
        _short_keepalive(sock)
        try:
            await reader.read()
        except OSError as exc:
            seen["client"] = (type(exc).__name__, exc.errno, round(now(), 2))

    sim = em.Simulation(seed=1, latency=0.01)
    sim.add_host("server", server)
    sim.add_host("client", client)
    sim.run(until=1)
    sim.network.partition_oneway(["server"], ["client"])
    sim.run(until=100)
    errors = list(sim.errors)
    sim.close()
    assert errors == []
    assert seen == {
        "client": ("TimeoutError", errno.ETIMEDOUT, 16.02),  # 16 s after the last segment it heard
        "server": ("ConnectionResetError", errno.ECONNRESET, 16.03),
    }


def _orphans_at(times, partition, writes):
    """The client's connections (orphan or not) at each of ``times``: it writes ``writes`` bytes, then closes.

    The server accepts and never reads; with ``partition`` it is cut off from the client right after the handshake.
    """
    seen = {}

    async def server():
        await (await asyncio.start_server(lambda r, w: None, "0.0.0.0", 9)).serve_forever()

    async def client():
        kernel = asyncio.get_running_loop().world.current()
        _, writer = await asyncio.open_connection("server", 9)
        await asyncio.sleep(1)
        writer.write(b"x" * writes)
        await asyncio.sleep(1)
        writer.transport.abort()  # the socket closes now; what it could not send yet stays with the kernel
        for at in times:
            await asyncio.sleep(at - now())
            seen[at] = [tcb.orphan for tcb in kernel.tcbs.values()]

    sim = em.Simulation(seed=1, latency=0.01)
    sim.add_host("server", server)
    sim.add_host("client", client)
    if partition:
        sim.run(until=0.5)
        sim.network.partition(["server"], ["client"])
    sim.run(until=max(times) + 1)
    sim.close()
    return seen


def test_a_closed_socket_gives_up_on_unacknowledged_data_after_linuxs_orphan_retries():
    """Linux retransmits a closed socket's (an orphan's) data tcp_orphan_retries times (0 meaning 8: 102.2 s of
    backoff), not tcp_retries2's 924.6 s. Found by review: capsim's orphan retried for 924.6 s, holding its port.
    Written at 1 s into a partition, closed at 2 s: still there at 100 s, gone by 104 s."""
    assert _orphans_at((100, 104), partition=True, writes=10) == {100: [True], 104: []}


def test_a_closed_socket_whose_peer_keeps_its_window_shut_gives_up_once_its_probes_back_off_to_the_maximum():
    """Linux's probe timer ends an orphan whose backed-off probe interval reaches TCP_RTO_MAX, though the peer
    answers every probe (0.2 s doubling: about 205 s); an open socket probes on (RFC 1122 4.2.2.17). Found by
    review: capsim's orphan probed forever."""
    assert _orphans_at((150, 250), partition=False, writes=1_000_000) == {150: [True], 250: []}


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    user_timeout_ms=st.integers(1, 40_000),
    loss=st.sampled_from([0.0, 0.3, 0.9]),
    duplicate=st.sampled_from([0.0, 0.5]),
    flaps=st.lists(
        st.tuples(st.floats(0.01, 5.0), st.sampled_from(["partition", "oneway", "heal", "pause", "resume"]))
    ),
)
def test_a_connect_with_tcp_user_timeout_ends_by_that_timeout_under_any_faults(
    seed, user_timeout_ms, loss, duplicate, flaps
):
    """Whatever the network does (loss, copies, reordering, flapping partitions, the server paused), a connect
    whose socket has TCP_USER_TIMEOUT succeeds or fails by that timeout, or by the first SYN retransmission (1 s)
    if that is later, as on Linux; a failure is ETIMEDOUT or ECONNREFUSED."""
    seen = {}

    async def client():
        sock = socket.socket()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("server", 7))
            seen["end"] = ("connected", now())
        except OSError as exc:
            seen["end"] = (exc.errno, now())

    sim = em.Simulation(seed=seed, latency=em.Uniform(0.001, 0.05), loss=loss, duplicate=duplicate, reorder=0.5)
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    t = 0.0
    for gap, action in flaps:
        t += gap
        sim.run(until=t)
        if action == "partition":
            sim.network.partition(["server"], ["client"])
        elif action == "oneway":
            sim.network.partition_oneway(["server"], ["client"])
        elif action == "heal":
            sim.network.heal()
        elif action == "pause":
            sim.pause("server")
        else:
            sim.resume("server")
    sim.run(until=max(t, 200.0))
    sim.close()
    outcome, at = seen["end"]
    assert outcome in ("connected", errno.ETIMEDOUT, errno.ECONNREFUSED)
    assert at <= max(user_timeout_ms / 1000, 1.0) + 1e-9


def test_a_user_timeout_longer_than_a_thousand_backoffs_still_fires():
    """With a 1e6 s user timeout a sender cut off retransmits every rto_max (past 1,023 doublings, where
    1 << backoff overflowed a float and its timer died at 121,886 s) and times out 1e6 s after it sent."""
    seen = []

    async def client():
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"ping\n")
        await reader.readline()
        await asyncio.sleep(1)  # the partition is up
        writer.write(b"lost\n")
        sent = now()
        try:
            await reader.readline()
        except OSError as exc:
            seen.append((exc.errno, now() - sent))

    sim = em.Simulation(seed=1, latency=0.005)
    sim.hosts.tcp.user_timeout = 1e6
    sim.add_host("server", echo_server)
    sim.add_host("client", client)
    sim.run(until=0.5)
    sim.network.partition(["server"], ["client"])
    sim.run(until=1.1e6)
    sim.close()
    assert not sim.errors
    assert len(seen) == 1 and seen[0][0] == errno.ETIMEDOUT and seen[0][1] == pytest.approx(1e6, abs=1)
