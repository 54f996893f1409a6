"""TCP for simulated hosts: a reliable, ordered byte stream over the lossy simulated network.

A ``Tcb`` (transmission control block) is one end of one connection. Its
segments are messages on the simulated network, so they are lost,
duplicated, reordered, delayed, held and cut exactly as capsim's messages
are, and TCP's own machinery makes the stream reliable again: sequence
numbers, cumulative acknowledgements, retransmission with exponential
backoff, fast retransmit and Reno congestion control (``tcpbuffers``), a
receive window, a persist timer for a closed window, FIN for a half-close
and RST for a reset. What it leaves out (SACK, Nagle, a bandwidth limit)
changes how fast bytes move, not what a program reads. There is no
TIME_WAIT either: a connection's port is free once the connection is over
(while a closed socket's connection still sends, it holds the port, as on
Linux), where Linux holds the port of the end that closed first 60 s more,
so binding it again at once without ``SO_REUSEADDR`` succeeds here and
fails there.

The timing follows Linux, which is what most services run on (the numbers
are in :class:`TcpSettings`). A connection whose data stays unacknowledged
for ``user_timeout`` seconds (924.6 s by default: Linux's ``tcp_retries2 =
15`` with a 200 ms minimum RTO doubling up to 120 s) is aborted and its
socket reports ``TimeoutError`` (ETIMEDOUT). As in Linux, only an end with
data in flight notices a partition; an idle end notices when it next sends
(a reset comes back from a peer that gave up) or through ``SO_KEEPALIVE``.

Each connection carries an id chosen by the end that opened it, standing in
for TCP's initial sequence numbers: a segment of an older connection on the
same addresses and ports never mixes with a newer one, it is answered with a
reset, and a late copy of an older connection's SYN opens nothing (ids only
grow, and the kernel keeps the last one accepted on each pair of ports).

``Tcb`` is the connection's state machine (what a segment or the program
does to it), on three layers: ``emulator.tcpstate`` (its variables, the
segment vocabulary and ``TcpSettings``), ``emulator.tcpsend`` (what it
sends) and ``emulator.tcptimers`` (retransmission, keepalive and the other
deadlines). The names of those modules are importable from here as before.
"""

from __future__ import annotations

import errno

from emulator.tcpstate import ACK, DATA, FIN, RST, SYN, SYNACK, TcpSettings
from emulator.tcpstate import CLOSED as CLOSED  # the names below are re-exported: importable from here as before
from emulator.tcpstate import ESTABLISHED as ESTABLISHED
from emulator.tcpstate import NS as NS
from emulator.tcpstate import SYN_RCVD as SYN_RCVD
from emulator.tcpstate import SYN_SENT as SYN_SENT
from emulator.tcpstate import Segment as Segment
from emulator.tcptimers import TcbTimers

__all__ = ["ACK", "DATA", "FIN", "RST", "SYN", "SYNACK", "Tcb", "TcpSettings"]


class Tcb(TcbTimers):
    """One end of one TCP connection.

    Made by a ``Kernel`` (``connect`` or an incoming SYN); its socket reads
    and writes through ``take`` and ``put`` and is told by ``sock.wake()``
    when it may have become readable or writable. When the program closes
    the socket the Tcb lives on, orphaned, to deliver what was written and
    the FIN.
    """

    def take(self, n: int) -> bytes:
        """Up to ``n`` bytes the program reads; opens the window, telling the peer if it was nearly shut."""
        before = self.window()
        data = self.rx.read(n)
        mss = self.settings.mss
        if before < mss <= self.window() and self.state == ESTABLISHED:
            self.ack_soon()  # a window update: the peer may be waiting to send
        return data

    def put(self, data: bytes | bytearray | memoryview) -> int:
        """Queue what fits of ``data`` for sending; return how many bytes were taken."""
        sock = self.sock
        room = (sock.sndbuf if sock is not None else self.settings.sndbuf) - len(self.sndq)
        if room <= 0:
            return 0
        n = min(room, len(data))
        self.sndq += data[:n]
        self.push()
        return n

    def shutdown_write(self) -> None:
        if not self.fin_out:
            self.fin_out = True
            self.push()

    def close(self) -> None:
        """The program closed its socket: send what is queued and a FIN, or reset if data was left unread."""
        self.sock = None
        self.orphan = True
        if self.state == CLOSED:
            return
        if self.state == SYN_SENT:
            self.destroy()
            return
        if self.rx.rcvq:  # Linux: closing with unread data resets the connection (RFC 2525, 2.17)
            self.send_rst()
            self.destroy()
            return
        self.shutdown_write()
        self._linger()
        self.maybe_done()

    def abort(self) -> None:
        """Reset the connection now (``SO_LINGER`` 0, or a closing listener): RST, discard everything."""
        if self.state not in (CLOSED, SYN_SENT):
            self.send_rst()
        self.destroy()

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, seg: Segment) -> None:
        """One segment of this connection (its addresses, ports and id match)."""
        kind = seg["type"]
        self.heard = self.kernel.now_ns()
        self.ka_sent = 0
        if kind == RST:
            if self.state == SYN_SENT:
                self.fail(errno.ECONNREFUSED)
            else:  # Linux: EPIPE once the peer's FIN came and ours is not sent (CLOSE_WAIT), else ECONNRESET
                self.fail(errno.EPIPE if self.rx.fin_in and not self.fin_out else errno.ECONNRESET)
            return
        if self.state == SYN_SENT:
            if kind == SYNACK:
                self._established(seg)
            return
        if kind == SYN:  # our SYN-ACK was lost: send it again
            if self.state == SYN_RCVD:
                self.emit({"type": SYNACK, "ack": 1, "wnd": self.window()})
            return
        if kind == SYNACK:  # our ACK of it was lost
            self._ack_now()
            return
        if self.state == SYN_RCVD:
            listener = self.listener
            if listener is not None and not listener.room():
                return  # Linux: the accept queue is full, the ACK is dropped; the SYN-ACK will be sent again
            self._accepted()
        self._ack_in(seg["ack"], seg["wnd"], kind == ACK and not seg.get("probe"))
        if self.state == CLOSED:
            return
        if kind == DATA:
            self._data_in(seg["seq"], seg["data"])
        elif kind == FIN:
            self._fin_in(seg["seq"])
        elif seg.get("probe"):
            self._ack_now()
        self.maybe_done()

    def _established(self, seg: Segment) -> None:
        self.state = ESTABLISHED
        self.rx.rcv_nxt = 1
        self.snd_una = self.snd_nxt = 1
        self.peer_wnd = seg["wnd"]
        self._handshake_done()
        self.ack_soon()
        self.wake()

    def _accepted(self) -> None:
        self.state = ESTABLISHED
        self.kernel.syn_cids[(self.lport, self.rip, self.rport)] = self.cid  # later copies of its SYN open nothing
        self._handshake_done()
        if self.listener is not None:
            self.listener.established(self)

    def _handshake_done(self) -> None:
        if self.retries == 0:  # Karn: no sample from a retransmitted SYN
            self._sample(self.since)
        self.since = self.rtx_at = None
        self.retries = 0
        self._arm_keepalive()

    def _ack_in(self, ack: int, wnd: int, pure: bool) -> None:
        old_wnd, self.peer_wnd = self.peer_wnd, wnd
        if wnd:
            self.probing_since = None  # the window opened: a later shut window is timed afresh
        if self.snd_nxt < ack:  # acknowledges data sent before a go-back-N rewind
            self.snd_nxt = ack
        if ack > self.snd_una:
            self._new_ack(ack)
        elif pure and ack == self.snd_una and self.snd_nxt > ack and wnd == old_wnd:
            if self.reno.duplicate(len(self.inflight), self.snd_nxt):
                self._resend_first()  # fast retransmit: three duplicate ACKs mean a segment was lost
        elif self.snd_nxt == self.snd_una and self.sndq and self.since is not None:
            self.since = self.kernel.now_ns()  # a shut window, but the peer answers: it is alive
            self.retries = 0
        self.push()

    def _new_ack(self, ack: int) -> None:
        data = min(ack - self.snd_una, len(self.sndq))
        del self.sndq[:data]
        self.snd_una = ack
        inflight, acked = self.inflight, 0
        while inflight and inflight[0] <= ack:
            inflight.popleft()
            acked += 1
        if self.rtt_seq is not None and ack >= self.rtt_seq:
            self._sample(self.rtt_at)
            self.rtt_seq = None
        self.retries = self.backoff = 0
        if self.reno.acked(acked, ack):
            self._resend_first()
        now = self.kernel.now_ns()
        fin_seq = self.fin_seq
        if (self.snd_una == self.snd_nxt and not self.sndq) or (fin_seq is not None and self.snd_una > fin_seq):
            self.since = self.rtx_at = None  # all acknowledged (the second test is _fin_acked(), inlined)
        else:
            self.since = now
            self.rtx_at = now + self._rto_ns()
            self.rearm()
        if data and self.sock is not None:
            self.wake()
        if self.orphan:
            self._linger()

    def _data_in(self, seq: int, text: str) -> None:
        if self.orphan and seq + len(text) > self.rx.rcv_nxt:
            # New data for a socket the program has closed: Linux answers with a reset.
            self.send_rst()
            self.destroy()
            return
        if self.rx.duplicate(seq, len(text)):
            self._ack_now()  # a duplicate: acknowledge at once, the ACK may have been lost
            return
        before = self.rx.rcv_nxt
        filled = self.rx.add(seq, text.encode("latin-1"), self.window())
        if self.rx.rcv_nxt == before or filled:
            self._ack_now()  # out of order, or a gap filled: tell the sender at once (RFC 5681, 4.2)
        else:
            self.ack_soon()
        if self.rx.rcv_nxt != before:
            self.wake()

    def _fin_in(self, seq: int) -> None:
        was = self.rx.fin_in
        if self.rx.fin(seq) and not was:
            self.wake()
        self._ack_now()

    # -- ending -------------------------------------------------------------------------------

    def maybe_done(self) -> None:
        """Closed once both FINs are through and ours is acknowledged."""
        if self.rx.fin_in and self._fin_acked():
            self.state = CLOSED
            self.kernel.forget(self)
            self.stop_timers()
            self.wake()

    def fail(self, code: int) -> None:
        """The connection is gone (reset, refused, timed out): the socket reports ``code`` once."""
        self.error = code
        self.destroy()

    def destroy(self) -> None:
        self.state = CLOSED
        self.sndq.clear()
        self.inflight.clear()
        self.rx.clear()
        self.kernel.forget(self)
        self.stop_timers()
        if self.listener is not None:
            self.listener.forget(self)
        self.wake()

    def wake(self) -> None:
        if self.sock is not None:
            self.sock.wake()
        elif self.listener is not None:
            self.listener.wake()
