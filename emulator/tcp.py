"""TCP for simulated hosts: a reliable, ordered byte stream over the lossy simulated network.

A ``Tcb`` (transmission control block) is one end of one connection. Its
segments are messages on the simulated network, so they are lost,
duplicated, reordered, delayed, held and cut exactly as capsim's messages
are, and TCP's own machinery makes the stream reliable again: sequence
numbers, cumulative acknowledgements, retransmission with exponential
backoff, fast retransmit and Reno congestion control (``tcpbuffers``), a
receive window, a persist timer for a closed window, FIN for a half-close
and RST for a reset. What it leaves out (SACK, Nagle, TIME_WAIT, a
bandwidth limit) changes how fast bytes move, not what a program sees.

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
reset.
"""

from __future__ import annotations

import asyncio
import collections
import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.tcpbuffers import Reassembly, Reno
from emulator.validate import is_int, is_number

if TYPE_CHECKING:
    from emulator.kernel import Kernel
    from emulator.sockets import SimSocket

#: A segment: the body of the message that carries it (``"type"``, ports, ``"cid"``, and
#: ``"seq"``, ``"ack"``, ``"wnd"``, ``"data"`` (latin-1 text), ``"probe"`` as its kind needs).
Segment = dict[str, Any]

__all__ = ["ACK", "DATA", "FIN", "RST", "SYN", "SYNACK", "Tcb", "TcpSettings"]

#: Segment kinds: the ``"type"`` of the message that carries a segment.
SYN, SYNACK, ACK, DATA, FIN, RST = "tcp.syn", "tcp.syn-ack", "tcp.ack", "tcp.data", "tcp.fin", "tcp.rst"

NS = 1_000_000_000

# States.
SYN_SENT, SYN_RCVD, ESTABLISHED, CLOSED = "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "CLOSED"


@dataclass
class TcpSettings:
    """TCP's tunables for a whole simulation, Linux's defaults unless noted.

    Attributes:
        mss: bytes of payload per segment (1460: Ethernet's 1500-byte MTU).
        sndbuf: bytes a socket's send buffer holds, sent or not, until acknowledged.
        rcvbuf: bytes a socket's receive buffer holds until the program reads them
            (the advertised window; Linux's ``tcp_rmem`` default, 131072).
        rto_initial: the retransmission timeout before any round trip is measured (1 s, RFC 6298).
        rto_min, rto_max: bounds of the retransmission timeout (Linux: 200 ms and 120 s).
        user_timeout: seconds data may stay unacknowledged before the connection is
            aborted with ETIMEDOUT. 924.6 s is what Linux's default ``tcp_retries2 = 15``
            amounts to: RTOs of 0.2, 0.4, ... 102.4 s, then six of 120 s. A socket
            can set its own with ``setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, ms)``.
        syn_retries: SYN retransmissions before ``connect`` fails with ETIMEDOUT
            (6: after 1 + 2 + ... + 64 = 127 s).
        synack_retries: SYN-ACK retransmissions before a half-open connection is dropped (5).
        fin_timeout: seconds a closed socket whose FIN was acknowledged waits for the peer's (60;
            one with data or a FIN still unacknowledged retransmits until ``user_timeout``).
        keepalive_time, keepalive_intvl, keepalive_probes: ``SO_KEEPALIVE``'s
            idle time, probe interval and probe count (7200 s, 75 s, 9).
    """

    mss: int = 1460
    sndbuf: int = 65536
    rcvbuf: int = 131072
    rto_initial: float = 1.0
    rto_min: float = 0.2
    rto_max: float = 120.0
    user_timeout: float = 924.6
    syn_retries: int = 6
    synack_retries: int = 5
    fin_timeout: float = 60.0
    keepalive_time: float = 7200.0
    keepalive_intvl: float = 75.0
    keepalive_probes: int = 9

    def __post_init__(self) -> None:
        for name in ("mss", "sndbuf", "rcvbuf"):
            value = getattr(self, name)
            if not is_int(value, ge=1):
                raise ValueError(f"TcpSettings.{name} must be a whole number of bytes >= 1, got {value!r}")
        for name in (
            "rto_initial",
            "rto_min",
            "rto_max",
            "user_timeout",
            "fin_timeout",
            "keepalive_time",
            "keepalive_intvl",
        ):
            value = getattr(self, name)
            if not is_number(value, gt=0, lt=float("inf")):
                raise ValueError(f"TcpSettings.{name} must be a positive number of seconds, got {value!r}")


class Tcb:
    """One end of one TCP connection.

    Made by a ``Kernel`` (``connect`` or an incoming SYN); its socket reads
    and writes through ``take`` and ``put`` and is told by ``sock.wake()``
    when it may have become readable or writable. When the program closes
    the socket the Tcb lives on, orphaned, to deliver what was written and
    the FIN.
    """

    def __init__(self, kernel: Kernel, lip: str, lport: int, rip: str, rport: int, cid: int, state: str):
        self.kernel = kernel
        self.settings: TcpSettings = kernel.settings
        self.lip, self.lport, self.rip, self.rport = lip, lport, rip, rport
        self.cid = cid
        self.state = state
        self.sock: SimSocket | None = None  # None until accepted and once the program closed it
        self.listener: SimSocket | None = None  # the listening socket that will accept it (server side, until accepted)
        self.orphan = False  # the program closed its socket; the Tcb finishes on its own
        self.error = 0  # errno to report: ECONNRESET, ETIMEDOUT, ECONNREFUSED
        self.user_timeout = self.settings.user_timeout
        self.keepalive = False
        # Sending: bytes from snd_una on, sent or not; the FIN after them once asked for.
        self.snd_una = self.snd_nxt = 1 if state == SYN_RCVD else 0
        self.sndq = bytearray()
        self.inflight: collections.deque[int] = collections.deque()  # end seq of each segment in flight
        self.fin_out = False  # the program will send no more (shutdown or close)
        self.fin_seq: int | None = None  # the FIN's sequence number once sent
        self.peer_wnd = self.settings.mss
        self.reno = Reno()
        # Receiving.
        self.rx = Reassembly(1 if state == SYN_RCVD else 0)
        # Timers: retransmission (or persist, or SYN), keepalive, orphan; and a deferred ACK.
        self.rto = self.settings.rto_initial  # from round-trip samples; doubled per backoff step
        self.backoff = 0
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.retries = 0
        self.since: int | None = None  # when the oldest unacknowledged byte was sent (ns)
        self.rtx_at: int | None = None
        self.rtx_high = 0  # no RTT sample from data below this (Karn): it was retransmitted
        self.rtt_seq: int | None = None
        self.rtt_at = 0
        self.heard = kernel.now_ns()  # the last segment from the peer, for keepalive
        self.ka_at: int | None = None
        self.ka_sent = 0
        self.orphan_at: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0  # when _timer fires (meaningful while it is set)
        self._ack_handle: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return (
            f"<Tcb {self.lip}:{self.lport} -> {self.rip}:{self.rport} {self.state}"
            f"{' orphan' if self.orphan else ''} una={self.snd_una} nxt={self.snd_nxt} "
            f"rcv={self.rx.rcv_nxt} cwnd={self.reno.cwnd}>"
        )

    # -- what the socket asks -----------------------------------------------------------------

    @property
    def fin_in(self) -> bool:
        return self.rx.fin_in

    @property
    def rcvq(self) -> bytearray:
        return self.rx.rcvq

    def readable(self) -> bool:
        return bool(self.rx.rcvq) or self.rx.fin_in or self.error != 0 or self.state == CLOSED

    def writable(self) -> bool:
        if self.state == SYN_SENT:
            return False
        return self.error != 0 or self.state == CLOSED or self.fin_out or len(self.sndq) < self.sndbuf_size()

    def sndbuf_size(self) -> int:
        return self.sock.sndbuf if self.sock is not None else self.settings.sndbuf

    def rcvbuf_size(self) -> int:
        return self.sock.rcvbuf if self.sock is not None else self.settings.rcvbuf

    def window(self) -> int:
        sock = self.sock  # rcvbuf_size(), inlined: this runs for every segment sent and read
        return max(0, (sock.rcvbuf if sock is not None else self.settings.rcvbuf) - len(self.rx.rcvq))

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

    def _linger(self) -> None:
        """An orphan whose FIN is acknowledged waits ``fin_timeout`` for the peer's (Linux's FIN_WAIT_2)."""
        if self.orphan and self.orphan_at is None and self._fin_acked() and not self.rx.fin_in:
            self.orphan_at = self.kernel.now_ns() + round(self.settings.fin_timeout * NS)
            self.rearm()

    def abort(self) -> None:
        """Reset the connection now (``SO_LINGER`` 0, or a closing listener): RST, discard everything."""
        if self.state not in (CLOSED, SYN_SENT):
            self.send_rst()
        self.destroy()

    # -- sending ------------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection: send the SYN (retransmitted until answered or ``syn_retries`` run out)."""
        self.state = SYN_SENT
        self._handshake({"type": SYN, "wnd": self.window()})

    def answer_syn(self) -> None:
        """Answer the peer's SYN with a SYN-ACK (retransmitted until the handshake completes)."""
        self._handshake({"type": SYNACK, "ack": 1, "wnd": self.window()})

    def _handshake(self, segment: Segment) -> None:
        self.since = self.kernel.now_ns()
        self.emit(segment)
        self.rtx_at = self.since + round(self.rto * NS)
        self.rearm()

    def push(self) -> None:
        """Send what the congestion and receive windows allow, then the FIN if it is due."""
        if self.state != ESTABLISHED or self.error:
            return
        if (
            len(self.sndq) <= self.snd_nxt - self.snd_una
            and not self.fin_out
            and (self.rtx_at is not None or self.snd_nxt == self.snd_una)
        ):
            return  # all sent and the timer is right (the common case: an ACK of everything)
        mss = self.settings.mss
        inflight = self.inflight
        while len(inflight) < self.reno.cwnd:
            offset = self.snd_nxt - self.snd_una
            avail = len(self.sndq) - offset
            room = self.snd_una + self.peer_wnd - self.snd_nxt
            if avail <= 0 or room <= 0:
                break
            n = min(avail, mss, room)
            self._send_data(self.snd_nxt, offset, n)
            if self.rtt_seq is None and self.snd_nxt >= self.rtx_high:
                self.rtt_seq, self.rtt_at = self.snd_nxt + n, self.kernel.now_ns()
            self.snd_nxt += n
            inflight.append(self.snd_nxt)
        if (
            self.fin_out
            and self.fin_seq is None
            and self.snd_nxt == self.snd_una + len(self.sndq)
            and len(inflight) < self.reno.cwnd
        ):
            self.fin_seq = self.snd_nxt
            self._send_fin()
            self.snd_nxt += 1
            inflight.append(self.snd_nxt)
        if (self.snd_nxt > self.snd_una or self.sndq or self.fin_out) and self.rtx_at is None and not self._fin_acked():
            now = self.kernel.now_ns()
            self.since = now if self.since is None else self.since
            self.rtx_at = now + self._rto_ns()
            self.rearm()

    def _send_data(self, seq: int, offset: int, n: int) -> None:
        self.emit(
            {
                "type": DATA,
                "seq": seq,
                "ack": self.rx.rcv_nxt,
                "wnd": self.window(),
                "data": self.sndq[offset : offset + n].decode("latin-1"),
            }
        )

    def _send_fin(self) -> None:
        self.emit({"type": FIN, "seq": self.fin_seq, "ack": self.rx.rcv_nxt, "wnd": self.window()})

    def _resend_first(self) -> None:
        """Retransmit the first unacknowledged segment (fast retransmit, NewReno's partial ACK)."""
        if self.fin_seq is not None and self.snd_una == self.fin_seq:
            self._send_fin()
        elif self.sndq:
            end = self.inflight[0] if self.inflight else self.snd_una + self.settings.mss
            self._send_data(self.snd_una, 0, min(end - self.snd_una, self.settings.mss, len(self.sndq)))

    def _fin_acked(self) -> bool:
        return self.fin_seq is not None and self.snd_una > self.fin_seq

    def emit(self, segment: Segment) -> None:
        segment["sp"], segment["dp"], segment["cid"] = self.lport, self.rport, self.cid
        if self._ack_handle is not None and "ack" in segment:
            self._ack_handle.cancel()  # the ACK rides on this segment
            self._ack_handle = None
        self.kernel.emit(self.lip, self.rip, segment)

    def send_rst(self) -> None:
        self.kernel.emit(self.lip, self.rip, {"type": RST, "sp": self.lport, "dp": self.rport, "cid": self.cid})

    def ack_soon(self) -> None:
        """Acknowledge once this instant's work is done, so a reply written meanwhile carries the ACK."""
        if self._ack_handle is None and self.state != CLOSED:
            kernel = self.kernel
            self._ack_handle = kernel.loop.call_later(0.0, self._ack_now, context=kernel.context)

    def _ack_now(self, probe: bool = False) -> None:
        self._ack_handle = None
        if self.state in (ESTABLISHED, SYN_RCVD):
            segment = {"type": ACK, "seq": self.snd_nxt, "ack": self.rx.rcv_nxt, "wnd": self.window()}
            if probe:
                segment["probe"] = True
            self.emit(segment)

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, seg: Segment) -> None:
        """One segment of this connection (its addresses, ports and id match)."""
        kind = seg["type"]
        self.heard = self.kernel.now_ns()
        self.ka_sent = 0
        if kind == RST:
            self.fail(errno.ECONNREFUSED if self.state == SYN_SENT else errno.ECONNRESET)
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

    def _sample(self, sent_at: int | None) -> None:
        """Update the RTO from one round trip (RFC 6298), clamped to Linux's bounds."""
        if sent_at is None:
            return
        rtt = (self.kernel.now_ns() - sent_at) / NS
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        s = self.settings
        self.rto = min(s.rto_max, max(s.rto_min, self.srtt + 4 * self.rttvar))

    def _rto_ns(self) -> int:
        return round(min(self.settings.rto_max, self.rto * (1 << self.backoff)) * NS)

    # -- timers ----------------------------------------------------------------------------------

    def rearm(self) -> None:
        """Make sure the timer fires at the earliest deadline (a later one re-arms when it fires)."""
        due = self.rtx_at
        for t in (self.ka_at, self.orphan_at):
            if t is not None and (due is None or t < due):
                due = t
        if due is None or (self._timer is not None and self._timer_at <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        self._timer = self.kernel.call_at_ns(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self.kernel.now_ns()
        if self.state == CLOSED:
            return
        if self.orphan_at is not None and now >= self.orphan_at:
            self.destroy()  # FIN_WAIT_2 for too long: give up quietly
            return
        if self.rtx_at is not None and now >= self.rtx_at:
            self._retransmit(now)
        if self.ka_at is not None and now >= self.ka_at and self.state != CLOSED:
            self._keepalive(now)
        if self.state != CLOSED:
            self.rearm()

    def _retransmit(self, now: int) -> None:
        self.rtx_at = None
        if self.state in (SYN_SENT, SYN_RCVD):
            self._retransmit_handshake(now)
            return
        if self.since is not None and now - self.since >= round(self.user_timeout * NS):
            self.fail(errno.ETIMEDOUT)  # Linux sends no reset when it gives up
            return
        self.retries += 1
        self.backoff += 1
        if self.snd_nxt == self.snd_una and self.sndq:
            self._ack_now(probe=True)  # a shut window: probe it (the persist timer)
        else:
            self.reno.timeout(len(self.inflight))
            self.rtx_high = self.snd_nxt
            self.rtt_seq = None
            self.snd_nxt = self.snd_una  # go back N: send everything unacknowledged again
            self.inflight.clear()
            if self.fin_seq is not None and self.fin_seq >= self.snd_una:
                self.fin_seq = None
            self.push()
        self.rtx_at = now + self._rto_ns()
        if self.since is not None:
            self.rtx_at = min(self.rtx_at, self.since + round(self.user_timeout * NS))  # Linux clamps the RTO

    def _retransmit_handshake(self, now: int) -> None:
        s = self.settings
        limit = s.syn_retries if self.state == SYN_SENT else s.synack_retries
        if self.retries >= limit:
            if self.state == SYN_SENT:
                self.fail(errno.ETIMEDOUT)
            else:
                self.destroy()  # a half-open connection nobody completed: dropped quietly
            return
        self.retries += 1
        self.emit({"type": SYN if self.state == SYN_SENT else SYNACK, "ack": 1, "wnd": self.window()})
        self.rtx_at = now + round(s.rto_initial * (2**self.retries) * NS)

    def set_keepalive(self, on: bool) -> None:
        self.keepalive = on
        self._arm_keepalive()

    def _arm_keepalive(self) -> None:
        if not self.keepalive or self.state != ESTABLISHED:
            self.ka_at = None
            return
        self.ka_at = self.heard + round(self._ka("keepalive_time") * NS)
        self.rearm()

    def _ka(self, name: str) -> float:
        sock = self.sock
        value = sock.tcp_options.get(name) if sock is not None else None
        if value is None:
            value = getattr(self.settings, name)  # keepalive_time, keepalive_intvl or keepalive_probes
        return value

    def _keepalive(self, now: int) -> None:
        if now - self.heard < round(self._ka("keepalive_time") * NS):
            self.ka_at = self.heard + round(self._ka("keepalive_time") * NS)
            return
        if self.ka_sent >= self._ka("keepalive_probes"):
            self.fail(errno.ETIMEDOUT)
            return
        self.ka_sent += 1
        self._ack_now(probe=True)
        self.ka_at = now + round(self._ka("keepalive_intvl") * NS)

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

    def stop_timers(self) -> None:
        self.rtx_at = self.ka_at = self.orphan_at = None
        for handle in (self._timer, self._ack_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._ack_handle = None

    def wake(self) -> None:
        if self.sock is not None:
            self.sock.wake()
        elif self.listener is not None:
            self.listener.wake()
