"""Simulated sockets against the real ones: the same calls on Linux loopback and on a VirtualLoop give the same answers.

Each scenario runs twice, on a stock asyncio loop with real sockets over
127.0.0.1 and on a ``VirtualLoop`` with simulated ones, and every result
(bytes read, errno raised) must match: the claim of ``emulator.sockets`` that
its errors are the ones Linux gives, checked against Linux itself.
"""

import asyncio
import socket
import sys

import pytest

from emulator.loop import VirtualLoop

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="compared with Linux's own sockets")


def _outcome(call):
    try:
        return call()
    except OSError as exc:
        return f"{type(exc).__name__}({exc.errno})"


class _Net:
    """Sockets of one kind (real or simulated) and a listener to pair them through."""

    def __init__(self, simulated):
        self.loop = asyncio.get_running_loop()
        self.simulated = simulated
        self.listener = self.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)

    def socket(self, kind=socket.SOCK_STREAM):
        sock = self.loop._host_socket(kind) if self.simulated else socket.socket(socket.AF_INET, kind)
        sock.setblocking(False)
        return sock

    async def pair(self):
        client = self.socket()
        await self.loop.sock_connect(client, self.listener.getsockname())
        server, _ = await self.loop.sock_accept(self.listener)
        server.setblocking(False)
        return client, server


async def _shut_rd(net):
    client, server = await net.pair()
    server.send(b"abc")
    await asyncio.sleep(0.05)
    client.shutdown(socket.SHUT_RD)
    return [_outcome(lambda: client.recv(10)), _outcome(lambda: client.recv(10))]


async def _send_after_the_peer_closed(net):
    client, server = await net.pair()
    server.close()
    await asyncio.sleep(0.05)
    out = []
    for _ in range(3):
        out.append(_outcome(lambda: client.send(b"x")))
        await asyncio.sleep(0.05)
    return [*out, _outcome(lambda: client.recv(10))]


async def _reset_by_a_close_with_unread_data(net):
    client, server = await net.pair()
    client.send(b"data")
    await asyncio.sleep(0.05)
    server.close()
    await asyncio.sleep(0.05)
    return [_outcome(lambda: client.recv(10)), _outcome(lambda: client.recv(10)), _outcome(lambda: client.send(b"x"))]


async def _unconnected(net):
    sock = net.socket()
    return [
        _outcome(lambda: sock.shutdown(socket.SHUT_WR)),
        _outcome(lambda: sock.send(b"x")),
        _outcome(lambda: sock.recv(1)),
        _outcome(sock.getpeername),
        _outcome(sock.accept),
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR),
    ]


async def _half_close(net):
    client, server = await net.pair()
    client.shutdown(socket.SHUT_WR)
    out = [_outcome(lambda: client.send(b"x"))]
    await asyncio.sleep(0.05)
    out.append(_outcome(lambda: server.recv(10)))
    server.send(b"back")
    await asyncio.sleep(0.05)
    out.append(_outcome(lambda: client.recv(10)))
    out.append(_outcome(lambda: client.shutdown(socket.SHUT_RDWR)))
    return out


async def _empty_sends_and_peeks(net):
    client, server = await net.pair()
    out = [_outcome(lambda: client.send(b"")), _outcome(lambda: server.recv(10))]
    client.send(b"hello")
    await asyncio.sleep(0.05)
    out.append(_outcome(lambda: server.recv(3, socket.MSG_PEEK)))
    out.append(_outcome(lambda: server.recv(10)))
    return out


async def _datagrams(net):
    rx = net.socket(socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = net.socket(socket.SOCK_DGRAM)
    tx.sendto(b"0123456789", rx.getsockname())
    tx.sendto(b"", rx.getsockname())
    await asyncio.sleep(0.05)
    out = [
        _outcome(lambda: rx.recvfrom(4, socket.MSG_PEEK)[0]),
        _outcome(lambda: rx.recvfrom(4)[0]),  # truncated, the rest of the datagram is gone
        _outcome(lambda: rx.recvfrom(4)[0]),  # an empty datagram is one
        _outcome(lambda: rx.recv(4)),
    ]
    refused = net.socket(socket.SOCK_DGRAM)
    refused.connect(("127.0.0.1", 1))
    refused.send(b"x")
    await asyncio.sleep(0.05)
    return [*out, _outcome(lambda: refused.recv(10)), _outcome(lambda: refused.recv(10))]


async def _refused(net):
    sock = net.socket()
    try:
        await net.loop.sock_connect(sock, ("127.0.0.1", 1))
    except OSError as exc:
        return f"{type(exc).__name__}({exc.errno})"
    return "connected"


async def _datagram_flags(net):
    rx = net.socket(socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(True)  # MSG_DONTWAIT makes one call non-blocking
    tx = net.socket(socket.SOCK_DGRAM)
    tx.setblocking(True)
    to = rx.getsockname()
    out = [
        _outcome(lambda: tx.sendto(b"x", socket.MSG_OOB, to)),  # no urgent data on UDP: EOPNOTSUPP
        _outcome(lambda: tx.sendto(b"y", socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL, to)),
        _outcome(lambda: tx.sendmsg([b"z"], [], socket.MSG_OOB, to)),
    ]
    await asyncio.sleep(0.05)
    out += [
        _outcome(lambda: rx.recvfrom(10, socket.MSG_DONTWAIT)[0]),
        _outcome(lambda: rx.recvfrom(10, socket.MSG_DONTWAIT)),
        _outcome(lambda: rx.recv_into(bytearray(10), 0, socket.MSG_DONTWAIT)),
        _outcome(lambda: rx.recv(10, socket.MSG_DONTWAIT)),
    ]
    tx.connect(to)
    out += [_outcome(lambda: tx.send(b"x", socket.MSG_OOB)), _outcome(lambda: tx.send(b"w", socket.MSG_DONTWAIT))]
    await asyncio.sleep(0.05)
    return [*out, _outcome(lambda: rx.recv(10, socket.MSG_DONTWAIT))]


async def _stream_dontwait(net):
    client, server = await net.pair()
    client.setblocking(True)
    out = [
        _outcome(lambda: client.recv(10, socket.MSG_DONTWAIT)),
        _outcome(lambda: client.sendto(b"q", socket.MSG_DONTWAIT, ("127.0.0.1", 1))),  # connected: address ignored
        _outcome(lambda: client.sendmsg([b"r"], [], socket.MSG_DONTWAIT)),
    ]
    await asyncio.sleep(0.05)
    out.append(_outcome(lambda: server.recvfrom(1)))  # a stream's recvfrom: the bytes, and no address
    out.append(_outcome(lambda: server.recvfrom(10, socket.MSG_PEEK)))
    out.append(_outcome(lambda: server.recvfrom_into(bytearray(10))))
    while isinstance(sent := _outcome(lambda: client.send(b"x" * 65536, socket.MSG_DONTWAIT)), int):
        pass  # the peer reads nothing: the send buffer fills, and MSG_DONTWAIT says so instead of blocking
    out.append(sent)
    out.append(_outcome(lambda: client.sendall(b"x" * 65536, socket.MSG_DONTWAIT)))
    client.setblocking(False)
    return [*out, _outcome(lambda: client.sendall(b"x" * 65536))]  # a non-blocking sendall: EAGAIN too


async def _tcp_options(net):
    sock = net.socket()
    out = []
    for name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_SYNCNT", "TCP_USER_TIMEOUT"):
        option = getattr(socket, name)
        for value in (-1, 0, 1, 127, 128, 32767, 32768):
            out.append((name, value, _outcome(lambda o=option, v=value: sock.setsockopt(socket.IPPROTO_TCP, o, v))))
        out.append((name, "now", sock.getsockopt(socket.IPPROTO_TCP, option)))
    return out


async def _datagram_edges(net):
    a, b, connected, fresh = (net.socket(socket.SOCK_DGRAM) for _ in range(4))
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    connected.connect(a.getsockname())
    out = [
        _outcome(lambda: connected.sendto(b"x", b.getsockname())),  # a connected UDP socket may still send elsewhere
        _outcome(lambda: fresh.sendto(b"z", ("127.0.0.1", 0))),
        _outcome(lambda: fresh.sendto(b"z" * 65508, a.getsockname())),
        _outcome(lambda: fresh.shutdown(socket.SHUT_WR)),  # ENOTCONN, yet Linux marks it shut
        _outcome(lambda: fresh.sendto(b"q", a.getsockname())),
    ]
    await asyncio.sleep(0.05)
    out.append(_outcome(lambda: b.recvfrom(10)[0]))
    out += [_outcome(lambda: connected.shutdown(socket.SHUT_WR)), _outcome(lambda: connected.send(b"y"))]
    out += [_outcome(lambda: connected.shutdown(socket.SHUT_RD)), _outcome(lambda: connected.recv(10))]
    return out


async def _full_accept_queue(net):
    """A listener of ``listen(0)`` and the one connection its accept queue holds (Linux: one; later SYNs drop)."""
    listener = net.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    queued = net.socket()
    await net.loop.sock_connect(queued, listener.getsockname())
    await asyncio.sleep(0.05)
    return listener, queued


async def _shutdown_edges(net):
    listener, queued = await _full_accept_queue(net)
    connecting = net.socket()  # the accept queue is full: its SYNs are dropped, it stays in SYN_SENT
    out = [_outcome(lambda: connecting.connect(listener.getsockname()))]
    out += [
        _outcome(lambda: connecting.shutdown(socket.SHUT_WR)),  # Linux aborts the connect
        _outcome(lambda: connecting.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)),
        _outcome(lambda: connecting.send(b"x")),
        _outcome(lambda: connecting.recv(1)),
        _outcome(connecting.getpeername),
        _outcome(lambda: listener.shutdown(socket.SHUT_WR)),  # nothing to a listener
        _outcome(lambda: listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
        _outcome(lambda: listener.shutdown(socket.SHUT_RD)),  # it stops listening: its queue is reset
        _outcome(lambda: listener.accept()),
        _outcome(lambda: listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
        _outcome(lambda: listener.shutdown(7)),
    ]
    await asyncio.sleep(0.05)
    out += [_outcome(lambda: queued.recv(1)), _outcome(lambda: queued.send(b"x"))]
    refused = net.socket()
    try:
        await net.loop.sock_connect(refused, listener.getsockname())
        out.append("connected")
    except OSError as exc:
        out.append(f"{type(exc).__name__}({exc.errno})")
    out += [_outcome(lambda: listener.listen(1)), _outcome(listener.getsockname) == listener.getsockname()]
    fresh = net.socket()
    out += [_outcome(lambda: fresh.shutdown(socket.SHUT_WR))]  # ENOTCONN, yet Linux marks it shut
    await net.loop.sock_connect(fresh, listener.getsockname())
    return [*out, _outcome(lambda: fresh.send(b"x")), _outcome(lambda: fresh.listen(1))]


async def _zero_length_reads(net):
    client, server = await net.pair()
    udp = net.socket(socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    out = [_outcome(lambda: client.recv(0)), _outcome(lambda: udp.recv(0))]  # Python answers b"" itself
    server.send(b"hi")
    udp.sendto(b"abc", udp.getsockname())
    await asyncio.sleep(0.05)
    out += [_outcome(lambda: client.recv(0)), _outcome(lambda: client.recv(10))]
    out += [_outcome(lambda: udp.recvfrom(0)[0]), _outcome(lambda: udp.recv(10))]  # recvfrom(0) takes the datagram
    try:
        client.recv(-1)
    except ValueError as exc:
        out.append(str(exc))
    return out


async def _reuse_addr(net):
    def tcp(reuse):
        sock = net.socket()
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return sock

    a, b, c, d, e = tcp(True), tcp(True), tcp(True), tcp(False), tcp(True)
    a.bind(("127.0.0.1", 0))
    at = a.getsockname()
    return [
        _outcome(lambda: b.bind(at)),  # both SO_REUSEADDR, neither listening: Linux lets them share the port
        _outcome(a.listen),
        _outcome(lambda: c.bind(at)),  # not with a listener
        _outcome(b.listen),  # nor two listeners
        _outcome(lambda: d.bind(at)),
        _outcome(lambda: e.bind(("0.0.0.0", at[1]))),
    ]


SCENARIOS = [
    _shut_rd,
    _send_after_the_peer_closed,
    _reset_by_a_close_with_unread_data,
    _unconnected,
    _half_close,
    _empty_sends_and_peeks,
    _datagrams,
    _refused,
    _datagram_flags,
    _stream_dontwait,
    _tcp_options,
    _datagram_edges,
    _shutdown_edges,
    _zero_length_reads,
    _reuse_addr,
]


def _on_loop(main, simulated=True):
    """``main()`` run to its end on a fresh loop (capsim's, or asyncio's over real sockets), closed after."""
    loop = VirtualLoop() if simulated else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def _run(scenario, simulated):
    async def main():
        return await scenario(_Net(simulated))

    return _on_loop(main, simulated)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__.strip("_"))
def test_a_simulated_socket_answers_as_linux_does(scenario):
    """Found by review: SHUT_RD never gave EOF, a reset after the peer's FIN said ECONNRESET (Linux: EPIPE),
    send on an unconnected socket ENOTCONN (EPIPE), accept on one that does not listen waited (EINVAL),
    send(b"") would block (0), and MSG_PEEK consumed what it peeked at; MSG_DONTWAIT on a blocking socket was refused
    as a call that would block (EAGAIN), a datagram's send flags were not checked (MSG_OOB: EOPNOTSUPP), and
    sendto and sendmsg dropped a stream socket's flags, sendall on a non-blocking socket whose buffer filled was
    refused as a call that would block (Linux: EAGAIN), recvfrom on a stream socket read nothing, ever, and the TCP
    options took any value (Linux: EINVAL outside 1-32767 for the keep-alive times, 1-127 for counts, < 0 for
    TCP_USER_TIMEOUT), where a keep-alive time of 0 or a negative user timeout gave up at once; a connected UDP
    socket could not send elsewhere (EISCONN; Linux sends), a datagram to port 0 went out (EINVAL) and one after
    SHUT_WR too (EPIPE); shutdown of a listener failed (Linux: SHUT_RD stops listening and resets its queue), of a
    connect under way failed (Linux abandons it: ECONNRESET), of an unconnected UDP socket passed (ENOTCONN), and
    listen on a connected socket was taken (EINVAL); two TCP sockets with SO_REUSEADDR could not share a port while
    neither listened (Linux lets them; a second listener there is EADDRINUSE); recv(0) with nothing queued would
    block (Python answers b"")."""
    assert _run(scenario, simulated=True) == _run(scenario, simulated=False)


async def _streams():
    """asyncio streams over the sockets: resets, EOF, writes after the peer closed, abort, half-close."""

    def name(exc):
        return f"{type(exc).__name__}({getattr(exc, 'errno', None)})"

    out = {}
    accepted = []
    server = await asyncio.start_server(lambda r, w: accepted.append((r, w)), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def pair():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not accepted:
            await asyncio.sleep(0.01)
        return reader, writer, *accepted.pop()

    reader, writer, _, peer = await pair()  # the peer closes with our bytes unread: a reset
    writer.write(b"unread")
    await writer.drain()
    await asyncio.sleep(0.05)
    peer.close()
    await asyncio.sleep(0.05)
    out["read after a reset"] = await reader.read()
    writer.close()
    reader, writer, _, peer = await pair()  # the peer closes cleanly; we write on
    peer.close()
    await asyncio.sleep(0.05)
    out["eof"] = await reader.read()
    out["writes after eof"] = []
    for _ in range(3):
        try:
            writer.write(b"x")
            await writer.drain()
            out["writes after eof"].append("ok")
        except OSError as exc:
            out["writes after eof"].append(name(exc))
        await asyncio.sleep(0.05)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError as exc:
        out["wait_closed"] = name(exc)
    reader, writer, peer_reader, peer = await pair()  # abort: the peer reads EOF
    writer.transport.abort()
    await asyncio.sleep(0.05)
    out["after an abort"] = await peer_reader.read()
    peer.close()
    reader, writer, peer_reader, peer = await pair()  # half-close, an answer, both close
    writer.write(b"q")
    writer.write_eof()
    out["half-closed request"] = await peer_reader.read()
    peer.write(b"a")
    peer.close()
    out["answer"] = await reader.read()
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return out


def test_asyncio_streams_see_what_they_see_on_linux():
    """The same stream program over real loopback and over simulated sockets: the same reads and errors."""
    simulated = VirtualLoop().run_until_complete(_streams())
    real_loop = asyncio.new_event_loop()
    try:
        real = real_loop.run_until_complete(_streams())
    finally:
        real_loop.close()
    assert simulated == real


def test_a_blocking_connect_is_refused_before_it_sends_anything():
    """connect and connect_ex on a blocking simulated socket raise NotAllowed (they would stop virtual time) and
    leave nothing behind: the listener sees no connection, and the same socket, made non-blocking, connects once."""
    from emulator import NotAllowed

    async def main():
        net = _Net(simulated=True)
        client = net.loop._host_socket(socket.SOCK_STREAM)  # blocking, as a fresh socket is
        for call in (client.connect, client.connect_ex):
            with pytest.raises(NotAllowed, match="blocking socket call"):
                call(net.listener.getsockname())
        await asyncio.sleep(1.0)  # long enough for a SYN to have arrived and a handshake to finish
        with pytest.raises(BlockingIOError):
            net.listener.accept()
        client.setblocking(False)
        await net.loop.sock_connect(client, net.listener.getsockname())
        server, _ = await net.loop.sock_accept(net.listener)
        await asyncio.sleep(1.0)
        with pytest.raises(BlockingIOError):
            net.listener.accept()  # one connection, not two
        return client.getpeername() == net.listener.getsockname() and server.getpeername() == client.getsockname()

    assert _on_loop(main)


async def _connect_into_a_full_accept_queue(net, option=socket.TCP_USER_TIMEOUT, values=(300, 1500)):
    """(errno, seconds) of connects whose SYNs a full accept queue drops, each with its own ``option``.

    ``listen(0)`` holds one established connection; later SYNs are dropped, as by a partition.
    """
    listener, first = await _full_accept_queue(net)
    out = []
    for value in values:
        sock = net.socket()
        sock.setsockopt(socket.IPPROTO_TCP, option, value)
        started = net.loop.time()
        try:
            await net.loop.sock_connect(sock, listener.getsockname())
            out.append(("connected", net.loop.time() - started))
        except OSError as exc:
            out.append((f"{type(exc).__name__}({exc.errno})", net.loop.time() - started))
        sock.close()
    first.close()
    listener.close()
    return out


def test_tcp_user_timeout_bounds_a_connect_whose_syns_are_dropped_as_on_linux():
    """Found by review: a connect's SYN retries ignored TCP_USER_TIMEOUT (Linux >= 5.4 gives up at it), and
    listen(0) held two connections (Linux: one). Against Linux loopback: 300 ms gives up at the first SYN
    retransmission (1 s: Linux checks the timeout only once a SYN was retransmitted), 1500 ms at 1.5 s."""

    simulated, real = _run(_connect_into_a_full_accept_queue, True), _run(_connect_into_a_full_accept_queue, False)
    assert [what for what, _ in simulated] == [what for what, _ in real] == ["TimeoutError(110)"] * 2
    assert [at for _, at in simulated] == pytest.approx([1.0, 1.5], abs=1e-6)
    assert [at for _, at in real] == pytest.approx([1.0, 1.5], abs=0.25)


def test_flags_a_simulated_socket_does_not_honour_are_refused_naming_what_it_takes():
    """MSG_OOB on a stream, MSG_WAITALL, MSG_TRUNC, and MSG_MORE on a datagram socket (Linux joins the sends into
    one datagram) are refused with NotAllowed, the message naming the flags that call takes; found by review, a
    datagram's send flags were not checked at all, and sendto/sendmsg on a stream socket dropped them."""
    from emulator import NotAllowed

    async def main():
        net = _Net(simulated=True)
        client, _ = await net.pair()
        udp = net.socket(socket.SOCK_DGRAM)
        to = net.listener.getsockname()
        stream = "only MSG_DONTWAIT, MSG_NOSIGNAL and MSG_MORE"
        refused = [
            (lambda: client.send(b"x", socket.MSG_OOB), f"send with flags 0x1 .*stream socket \\({stream} are\\)"),
            (lambda: client.sendto(b"x", socket.MSG_OOB, to), "send with flags 0x1 .*stream"),
            (lambda: client.sendmsg([b"x"], [], socket.MSG_OOB), "send with flags 0x1 .*stream"),
            (lambda: client.recv(1, socket.MSG_WAITALL), "recv with flags 0x100 .*only MSG_PEEK and MSG_DONTWAIT"),
            (lambda: udp.recvfrom(1, socket.MSG_TRUNC), "recvfrom with flags 0x20 .*only MSG_PEEK and MSG_DONTWAIT"),
            (lambda: udp.sendto(b"x", socket.MSG_MORE, to), "MSG_MORE on a datagram socket .*one datagram"),
            (lambda: udp.sendto(b"x", socket.MSG_EOR, to), "sendto with flags 0x80 .*only MSG_DONTWAIT and MSG_NOS"),
        ]
        for call, message in refused:
            with pytest.raises(NotAllowed, match=message):
                call()
        return True

    assert _on_loop(main)


async def _writer_facing_a_shut_window(net, user_timeout_ms, patience):
    """(outcome, seconds) of a writer whose peer reads nothing: the peer's window shuts and stays shut."""
    client = net.socket()
    if user_timeout_ms:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)
    await net.loop.sock_connect(client, net.listener.getsockname())
    _server, _ = await net.loop.sock_accept(net.listener)  # held open, never read
    started = net.loop.time()
    while net.loop.time() - started < patience:
        try:
            client.send(b"x" * 65536)
        except BlockingIOError:
            await asyncio.sleep(0.01)
        except OSError as exc:
            return f"{type(exc).__name__}({exc.errno})", net.loop.time() - started
    return "still open", patience


def test_tcp_user_timeout_ends_a_connection_whose_peer_keeps_its_window_shut_as_on_linux():
    """Linux (5.11 on) aborts with ETIMEDOUT a connection whose zero window outlasts the socket's TCP_USER_TIMEOUT,
    though the peer answers every probe; without the option it probes on as long as the peer answers. Found by
    review: capsim never gave up. Against Linux loopback, 2 s: ETIMEDOUT about 2.5 s after the first write."""

    def run(simulated, ms, patience):
        async def main():
            return await _writer_facing_a_shut_window(_Net(simulated), ms, patience)

        return _on_loop(main, simulated)

    simulated, real = run(True, 2000, 10.0), run(False, 2000, 10.0)
    assert simulated[0] == real[0] == "TimeoutError(110)"
    assert simulated[1] == pytest.approx(real[1], abs=0.5)
    assert run(True, 0, 300.0) == ("still open", 300.0)


def test_a_fresh_socket_answers_linuxs_defaults_for_the_tcp_options_it_honours():
    """getsockopt of TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and TCP_SYNCNT before any is set answers the
    simulation's settings, Linux's defaults (found by review: 0), and TCP_USER_TIMEOUT 0 (none)."""

    async def main():
        sock = _Net(simulated=True).socket()
        names = ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_SYNCNT", "TCP_USER_TIMEOUT")
        return [sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)) for name in names]

    assert _on_loop(main) == [7200, 75, 9, 6, 0]


def test_tcp_syncnt_sets_a_sockets_syn_retries_as_on_linux():
    """Found by review: TCP_SYNCNT was accepted and ignored (a connect took the default 6 retries, 127 s). Against
    Linux loopback: 1 retry gives up after 1 + 2 = 3 s; 0 and 128 are refused with EINVAL, as Linux does."""

    async def scenario(net):
        sock = net.socket()
        refused = [_outcome(lambda v=v: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, v)) for v in (0, 128)]
        return refused, await _connect_into_a_full_accept_queue(net, socket.TCP_SYNCNT, (1,))

    simulated, real = _run(scenario, True), _run(scenario, False)
    assert simulated[0] == real[0] == ["OSError(22)"] * 2
    assert simulated[1] == [("TimeoutError(110)", pytest.approx(3.0, abs=1e-6))]
    assert real[1] == [("TimeoutError(110)", pytest.approx(3.0, abs=0.25))]


def test_two_udp_sockets_sharing_a_port_through_so_reuseaddr_are_refused_as_not_simulated():
    """Linux lets two UDP sockets with SO_REUSEADDR bind one port and gives each datagram to one of them; capsim
    refused the second with EADDRINUSE, which Linux does not say: it is NotAllowed, naming the option."""
    from emulator import NotAllowed

    async def main():
        net = _Net(simulated=True)
        a, b = net.socket(socket.SOCK_DGRAM), net.socket(socket.SOCK_DGRAM)
        for sock in (a, b):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        a.bind(("127.0.0.1", 0))
        with pytest.raises(NotAllowed, match=r"two UDP sockets sharing port .* SO_REUSEADDR"):
            b.bind(a.getsockname())
        return True

    assert _on_loop(main)
