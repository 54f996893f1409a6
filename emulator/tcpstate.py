"""What one end of a TCP connection is: the segment vocabulary, the tunables and the variables.

RFC 793 calls an end's variables its transmission control block; here it is
``TcbState``, the base of ``emulator.tcp.Tcb``, with the questions its socket
asks of it (readable, writable, the receive window). The segment kinds and
connection states are the strings traces show, and ``TcpSettings`` holds
Linux's defaults for a whole simulation. How a Tcb sends is in
``emulator.tcpsend``, its timers in ``emulator.tcptimers``, and how it
reacts to segments and to its program in ``emulator.tcp``.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from emulator.errors import ConfigError
from emulator.tcpbuffers import Reassembly, Reno
from emulator.validate import is_int, is_number

if TYPE_CHECKING:
    from emulator.kernel import Kernel
    from emulator.sockets import SimSocket

#: A segment: the body of the message that carries it (``"type"``, ports, ``"cid"``, and
#: ``"seq"``, ``"ack"``, ``"wnd"``, ``"data"`` (latin-1 text), ``"probe"`` as its kind needs).
Segment = dict[str, Any]

__all__ = [
    "ACK",
    "CLOSED",
    "DATA",
    "ESTABLISHED",
    "FIN",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "NS",
    "RST",
    "SYN",
    "SYNACK",
    "SYN_RCVD",
    "SYN_SENT",
    "Segment",
    "TcbState",
    "TcpSettings",
    "linux_timeout",
]

#: Segment kinds: the ``"type"`` of the message that carries a segment.
SYN, SYNACK, ACK, DATA, FIN, RST = "tcp.syn", "tcp.syn-ack", "tcp.ack", "tcp.data", "tcp.fin", "tcp.rst"

NS = 1_000_000_000

# States.
SYN_SENT, SYN_RCVD, ESTABLISHED, CLOSED = "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "CLOSED"


@dataclass
class TcpSettings:
    """TCP's tunables for a whole simulation, Linux's defaults unless noted.

    Each value is checked as it is set, by the constructor or an assignment
    (``sim.hosts.tcp.user_timeout = 30``), and a ConfigError says what it
    takes: times from 1 ns (the clock's resolution) to 1e9 s (``MAX_SECONDS``,
    31.7 years: never, in effect), whole numbers of bytes >= 1, and retries
    >= 0 within Linux's bounds (``syn_retries`` at most 127, ``synack_retries``
    and ``orphan_retries`` at most 255). A name that is no setting is refused too.

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
            can set its own with ``setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, ms)``;
            then, as on Linux 5.11 and later, a peer's window shut that long (counted
            from the first probe) aborts the connection too, though the peer answers
            every probe (without it, probing goes on while the peer answers).
        syn_retries: SYN retransmissions before ``connect`` fails with ETIMEDOUT
            (6: after 1 + 2 + ... + 64 = 127 s), or sooner at the socket's
            ``TCP_USER_TIMEOUT`` if it has one, as on Linux 5.4 and later (checked once a
            SYN was retransmitted: a timeout under 1 s ends the connect at 1 s).
        synack_retries: SYN-ACK retransmissions before a half-open connection is dropped (5).
            A socket's ``TCP_SYNCNT`` replaces both: a connect's SYN retries, and on a
            listener its connections' SYN-ACK retries, as on Linux.
        fin_timeout: seconds a closed socket whose FIN was acknowledged waits for the peer's (60).
        orphan_retries: how long a closed socket (an orphan) retransmits unacknowledged data
            or its FIN, in retries as Linux counts them (its ``tcp_orphan_retries`` 0 means
            8: 0.2 + 0.4 + ... + 51.2 = 102.2 s of backoff) unless the socket had
            ``TCP_USER_TIMEOUT``; an orphan whose peer keeps its window shut gives up once
            the backed-off probe interval reaches ``rto_max``, as on Linux.
        keepalive_time, keepalive_intvl, keepalive_probes: ``SO_KEEPALIVE``'s
            idle time, probe interval and probe count (7200 s, 75 s, 9); giving up, the
            socket reports ETIMEDOUT and a reset goes to the peer. As on Linux,
            no probe goes out while data or a FIN waits for its ack, and a socket with
            ``TCP_USER_TIMEOUT`` set gives up by that timeout (counted from the last
            segment heard, once a probe is out), not by the probe count.
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
    orphan_retries: int = 8
    keepalive_time: float = 7200.0
    keepalive_intvl: float = 75.0
    keepalive_probes: int = 9

    def __setattr__(self, name: str, value: object) -> None:
        # Checked at every assignment, the constructor's too: ``sim.hosts.tcp.user_timeout = 30`` is the usual way.
        _check(name, value)
        super().__setattr__(name, value)


#: A TcpSettings time is at least one nanosecond, the clock's resolution, and at most 1e9 s (31.7 years),
#: which is never, in effect: within those, no timer's arithmetic (an RTO doubled per SYN retry, Linux's
#: orphan timeout from rto_min and rto_max) leaves the floats or the clock's range.
MIN_SECONDS, MAX_SECONDS = 1e-9, 1e9

#: The most retries Linux takes: 127 SYNs (MAX_TCP_SYNCNT, TCP_SYNCNT's bound), 255 SYN-ACKs or an
#: orphan's retransmissions (it counts them in a byte).
_MOST_RETRIES = {"syn_retries": 127, "synack_retries": 255, "orphan_retries": 255, "keepalive_probes": None}
_BYTES = ("mss", "sndbuf", "rcvbuf")
_SECONDS = ("rto_initial", "rto_min", "rto_max", "user_timeout", "fin_timeout", "keepalive_time", "keepalive_intvl")


def _check(name: str, value: object) -> None:
    """Refuse a value ``name`` cannot take (or a name that is no setting), saying what it takes."""
    hint = " (a bool is not one)" if isinstance(value, bool) else ""
    if name in _BYTES:
        if not is_int(value, ge=1):
            raise ConfigError(f"TcpSettings.{name} must be a whole number of bytes >= 1, got {value!r}{hint}")
    elif name in _MOST_RETRIES:
        most = _MOST_RETRIES[name]
        if not is_int(value, ge=0, le=most):
            within = ">= 0" if most is None else f"from 0 to {most}, as Linux takes"
            raise ConfigError(f"TcpSettings.{name} must be a whole number of retries {within}, got {value!r}{hint}")
    elif name in _SECONDS:
        if not is_number(value, ge=MIN_SECONDS, le=MAX_SECONDS):
            raise ConfigError(
                f"TcpSettings.{name} must be a positive number of seconds, from {MIN_SECONDS:g} (a nanosecond, the "
                f"clock's resolution) to {MAX_SECONDS:g} (31.7 years: never, in effect), got {value!r}{hint}"
            )
    else:
        known = ", ".join(f.name for f in fields(TcpSettings))
        raise ConfigError(f"TcpSettings has no setting {name!r}; its settings are {known}")


def linux_timeout(retries: int, rto_min: float, rto_max: float) -> float:
    """Seconds Linux lets ``retries`` retransmissions take (its ``tcp_model_timeout``).

    RTOs start at ``rto_min`` and double up to ``rto_max``: ``linux_timeout(15, 0.2, 120)``
    is 924.6, the default user timeout, and ``linux_timeout(8, 0.2, 120)`` 102.2.
    """
    thresh = int(rto_max / rto_min).bit_length() - 1  # ilog2
    if retries <= thresh:
        return ((2 << retries) - 1) * rto_min
    return ((2 << thresh) - 1) * rto_min + (retries - thresh) * rto_max


class TcbState:
    """The variables of one end of one TCP connection, and what its socket asks of them.

    The base of ``emulator.tcp.Tcb`` (see there); the layers above it read and
    write these fields directly, as a TCB's routines do.
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
        self.reuse_addr = False  # its socket had SO_REUSEADDR (for a bind to its port while it finishes)
        self.error = 0  # errno to report: ECONNRESET, ETIMEDOUT, ECONNREFUSED
        self.user_timeout = self.settings.user_timeout
        self.explicit_timeout: float | None = None  # its socket's TCP_USER_TIMEOUT (s), kept once the program closed it
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
        self.probing_since: int | None = None  # the first probe of a shut window still shut (Linux's probes_tstamp)
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
