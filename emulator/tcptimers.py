"""A TCP end's timers: retransmission with backoff, the persist probe, keepalive, FIN_WAIT_2.

``TcbTimers`` is the timer layer of ``emulator.tcp.Tcb``. One loop timer per
connection fires at the earliest of three deadlines (retransmission, which
also serves as the persist and SYN timers; keepalive; an orphan's
FIN_WAIT_2), and each deadline re-arms it when it fires. The retransmission
timeout comes from round-trip samples (RFC 6298, Karn's rule) within
Linux's bounds, doubles per backoff step, and gives up after
``user_timeout``, ``syn_retries``, ``synack_retries`` or (a closed
socket's) ``orphan_retries`` as Linux does.
"""

from __future__ import annotations

import errno
import math
from typing import TYPE_CHECKING

from emulator.tcpsend import TcbSender
from emulator.tcpstate import CLOSED, ESTABLISHED, NS, SYN, SYN_RCVD, SYN_SENT, SYNACK, linux_timeout

__all__ = ["TcbTimers"]


class TcbTimers(TcbSender):
    """The timer layer of a ``Tcb`` (see the module docstring)."""

    if TYPE_CHECKING:  # the connection's own, above this layer (emulator.tcp.Tcb)

        def fail(self, code: int) -> None: ...

        def destroy(self) -> None: ...

    def _linger(self) -> None:
        """An orphan whose FIN is acknowledged waits ``fin_timeout`` for the peer's (Linux's FIN_WAIT_2)."""
        if self.orphan and self.orphan_at is None and self._fin_acked() and not self.rx.fin_in:
            self.orphan_at = self.kernel.now_ns() + round(self.settings.fin_timeout * NS)
            self.rearm()

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

    def _give_up_ns(self) -> int:
        """How long data may stay unacknowledged (ns).

        The user timeout, or for an orphan without ``TCP_USER_TIMEOUT`` Linux's
        ``tcp_orphan_retries`` worth of backoff (102.2 s), if that is shorter.
        """
        s = self.settings
        if self.orphan and self.explicit_timeout is None:
            return round(min(self.user_timeout, linux_timeout(s.orphan_retries, s.rto_min, s.rto_max)) * NS)
        return round(self.user_timeout * NS)

    def _rto_ns(self) -> int:
        # Past 1023 doublings 1 << backoff is no float (an OverflowError after ~1,000 retransmissions of a long
        # user timeout); by then the doubled RTO is past any rto_max, which min() gives, as before.
        doubled = self.rto * (1 << self.backoff) if self.backoff < 1024 else math.inf
        return round(min(self.settings.rto_max, doubled) * NS)

    # -- timers ----------------------------------------------------------------------------------

    def rearm(self) -> None:
        """Make sure the timer fires at the earliest deadline (a later one re-arms when it fires).

        A crashed host's connections arm nothing: its dead code may still write
        and close, but no timer of theirs runs (or keeps the dead incarnation in memory).
        """
        if not self.kernel.alive:
            return
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
        give_up = self._give_up_ns()
        if self.since is not None and now - self.since >= give_up:
            self.fail(errno.ETIMEDOUT)  # Linux sends no reset when it gives up
            return
        explicit = self.explicit_timeout
        shut = self.snd_nxt == self.snd_una and bool(self.sndq)
        if shut:
            if self.probing_since is None:
                self.probing_since = now
            elif explicit is not None and now - self.probing_since >= round(explicit * NS):
                # Linux (5.11 on): with TCP_USER_TIMEOUT set, a window shut that long ends the connection, though
                # the peer answers every probe (without it, probing goes on while the peer answers, RFC 1122 4.2.2.17).
                self.fail(errno.ETIMEDOUT)
                return
            elif explicit is None and self.orphan and self._rto_ns() >= round(self.settings.rto_max * NS):
                self.fail(errno.ETIMEDOUT)  # Linux: an orphan stops probing once its backoff reaches the maximum
                return
        self.retries += 1
        self.backoff += 1
        if shut:
            self._ack_now(probe=True)  # a shut window: probe it (the persist timer)
        else:
            self.reno.timeout(len(self.inflight))
            self.rtx_high = self.snd_nxt
            self.rtt_seq = None
            self.snd_nxt = self.snd_una  # go back N: send everything unacknowledged again
            self.inflight.clear()
            # The FIN keeps its sequence number (push sends it again there): an ACK of it that arrives
            # late, after this rewind, must still count as acknowledging it.
            self.push()
        self.rtx_at = now + self._rto_ns()
        if self.since is not None:
            self.rtx_at = min(self.rtx_at, self.since + give_up)  # Linux clamps the RTO
        if shut and explicit is not None and self.probing_since is not None:
            self.rtx_at = min(self.rtx_at, self.probing_since + round(explicit * NS))  # and the probe timer

    def _retransmit_handshake(self, now: int) -> None:
        s = self.settings
        syn = self.state == SYN_SENT
        # Linux (5.4 on) ends a connect at its socket's TCP_USER_TIMEOUT too, whichever comes first, counted from
        # the first SYN and checked only once a SYN was retransmitted; SYN_RCVD has synack_retries alone.
        explicit = self.explicit_timeout if syn else None
        deadline = None if explicit is None or self.since is None else self.since + round(explicit * NS)
        # TCP_SYNCNT sets a connect's SYN retries and, on a listener, its connections' SYN-ACK retries (Linux).
        own = self.sock if syn else self.listener
        limit = own.syn_retries if own is not None and own.syn_retries is not None else None
        if limit is None:
            limit = s.syn_retries if syn else s.synack_retries
        if self.retries >= limit or (deadline is not None and self.retries > 0 and now >= deadline):
            if syn:
                self.fail(errno.ETIMEDOUT)
            else:
                self.destroy()  # a half-open connection nobody completed: dropped quietly
            return
        self.retries += 1
        self.emit({"type": SYN if syn else SYNACK, "ack": 1, "wnd": self.window()})
        self.rtx_at = now + round(s.rto_initial * (2**self.retries) * NS)
        if deadline is not None:
            self.rtx_at = min(self.rtx_at, max(now, deadline))  # Linux clamps the RTO to the user timeout

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
        if self.sndq or self.snd_nxt != self.snd_una:
            # Data (or a FIN) out or queued: as Linux's keep-alive timer says, "it is alive without
            # keepalive": no probe; the retransmission timer and the user timeout decide. Look again later.
            self.ka_at = now + round(self._ka("keepalive_time") * NS)
            return
        if now - self.heard < round(self._ka("keepalive_time") * NS):
            self.ka_at = self.heard + round(self._ka("keepalive_time") * NS)
            return
        # Linux gives up after keepalive_probes unanswered probes, or, on a socket with TCP_USER_TIMEOUT set,
        # once that long has passed since the peer was last heard and a probe is out (the count is ignored).
        explicit = self.explicit_timeout
        if (
            self.ka_sent > 0 and now - self.heard >= round(explicit * NS)
            if explicit is not None
            else self.ka_sent >= self._ka("keepalive_probes")
        ):
            self.send_rst()  # Linux resets the peer when keep-alive gives up (the user timeout's give-up does not)
            self.fail(errno.ETIMEDOUT)
            return
        self.ka_sent += 1
        self._ack_now(probe=True)
        self.ka_at = now + round(self._ka("keepalive_intvl") * NS)

    def stop_timers(self) -> None:
        self.rtx_at = self.ka_at = self.orphan_at = None
        for handle in (self._timer, self._ack_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._ack_handle = None
