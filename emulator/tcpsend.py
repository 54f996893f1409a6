"""How a TCP end sends: the handshake's segments, data within both windows, the FIN, ACKs.

``TcbSender`` is the sending layer of ``emulator.tcp.Tcb``: ``push`` sends
what the congestion window (``tcpbuffers.Reno``) and the peer's receive
window allow, then the FIN once everything before it is out; an ACK waits
until the instant's work is done so that a reply written meanwhile carries
it. When to send again is the timers' business (``emulator.tcptimers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.tcpstate import (
    ACK,
    CLOSED,
    DATA,
    ESTABLISHED,
    FIN,
    NS,
    RST,
    SYN,
    SYN_RCVD,
    SYN_SENT,
    SYNACK,
    Segment,
    TcbState,
)

__all__ = ["TcbSender"]


class TcbSender(TcbState):
    """The sending layer of a ``Tcb`` (see the module docstring)."""

    if TYPE_CHECKING:  # the timer layer's, above this one (emulator.tcptimers.TcbTimers)

        def rearm(self) -> None: ...

        def _rto_ns(self) -> int: ...

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
            and (self.fin_seq is None or self.snd_nxt == self.fin_seq)  # not sent yet, or rewound to it
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
        kernel = self.kernel
        if self._ack_handle is None and self.state != CLOSED and kernel.alive:
            self._ack_handle = kernel.loop.call_later(0.0, self._ack_now, context=kernel.context)

    def _ack_now(self, probe: bool = False) -> None:
        self._ack_handle = None
        if self.state in (ESTABLISHED, SYN_RCVD):
            segment = {"type": ACK, "seq": self.snd_nxt, "ack": self.rx.rcv_nxt, "wnd": self.window()}
            if probe:
                segment["probe"] = True
            self.emit(segment)
