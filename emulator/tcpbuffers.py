"""The parts of a TCP connection that need no timers: reassembly of arriving bytes, and the congestion window.

``Reassembly`` puts segments back in order (they may arrive late, twice,
or before the ones they follow) and keeps the bytes the program has not
read yet. ``Reno`` is the sender's congestion control as Linux counts it,
in segments: an initial window of 10, slow start, congestion avoidance,
fast retransmit on three duplicate ACKs and NewReno's fast recovery, and a
window of 1 after a retransmission timeout. With no bandwidth in the model
it only paces a transfer by round trips, as slow start does on a real
link, and keeps one lost segment from costing a whole timeout.
"""

from __future__ import annotations

import heapq

__all__ = ["Reassembly", "Reno"]


class Reassembly:
    """The receiving half: the next byte expected, bytes in order not yet read, segments that came early."""

    __slots__ = ("_early", "_starts", "fin_in", "peer_fin", "rcv_nxt", "rcvq")

    def __init__(self, rcv_nxt: int):
        self.rcv_nxt = rcv_nxt
        self.rcvq = bytearray()
        self._early: dict[int, bytes] = {}  # seq -> bytes that came before the ones they follow
        self._starts: list[int] = []  # heap of their seqs
        self.peer_fin: int | None = None  # the peer's FIN, seen out of order
        self.fin_in = False  # the peer's FIN arrived in order: the end of the stream

    def duplicate(self, seq: int, length: int) -> bool:
        return seq + length <= self.rcv_nxt or self.fin_in

    def add(self, seq: int, data: bytes, room: int) -> bool:
        """Take a segment of ``data`` at ``seq`` with ``room`` bytes of window left; True if it filled a gap."""
        if seq > self.rcv_nxt:
            if seq - self.rcv_nxt < room and seq not in self._early:
                self._early[seq] = data
                heapq.heappush(self._starts, seq)
            return False
        self._take(data[self.rcv_nxt - seq :], room)
        filled = False
        while self._starts and self._starts[0] <= self.rcv_nxt:
            start = heapq.heappop(self._starts)
            early = self._early.pop(start)
            if start + len(early) > self.rcv_nxt:
                self._take(early[self.rcv_nxt - start :], room - len(self.rcvq))
                filled = True
        if self.peer_fin is not None and self.peer_fin == self.rcv_nxt:
            self.fin(self.peer_fin)
        return filled

    def _take(self, data: bytes, room: int) -> None:
        data = data[: max(0, room)]
        self.rcvq += data
        self.rcv_nxt += len(data)

    def fin(self, seq: int) -> bool:
        """The peer's FIN at ``seq``; True once the stream has ended (it came in order)."""
        if seq > self.rcv_nxt:
            self.peer_fin = seq
        elif seq == self.rcv_nxt and not self.fin_in:
            self.rcv_nxt += 1
            self.fin_in = True
        return self.fin_in

    def read(self, n: int) -> bytes:
        data = bytes(self.rcvq[:n])
        del self.rcvq[:n]
        return data

    def clear(self) -> None:
        self._early.clear()
        self._starts.clear()


class Reno:
    """Congestion control in segments, as Linux counts it (RFC 5681 with RFC 6582's NewReno recovery)."""

    __slots__ = ("_grow", "cwnd", "dupacks", "recover", "ssthresh")

    #: Linux's initial congestion window (RFC 6928).
    INITIAL = 10

    def __init__(self) -> None:
        self.cwnd = self.INITIAL
        self.ssthresh = 1 << 30
        self._grow = 0
        self.dupacks = 0
        self.recover: int | None = None  # in fast recovery until this sequence number is acknowledged

    def acked(self, segments: int, ack: int) -> bool:
        """New data acknowledged (``segments`` of them, up to ``ack``); True to resend the next hole (NewReno)."""
        self.dupacks = 0
        if self.recover is not None:
            if ack >= self.recover:
                self.cwnd, self.recover = self.ssthresh, None
                return False
            return True  # a partial ACK: the next segment was lost too
        if self.cwnd < self.ssthresh:
            self.cwnd += segments
        else:
            self._grow += segments
            if self._grow >= self.cwnd:
                self._grow -= self.cwnd
                self.cwnd += 1
        return False

    def duplicate(self, in_flight: int, snd_nxt: int) -> bool:
        """A duplicate ACK; True when it is the third: retransmit the first unacknowledged segment now."""
        self.dupacks += 1
        if self.recover is not None:
            self.cwnd += 1  # each further duplicate means one more segment has left the network
            return False
        if self.dupacks == 3:
            self.ssthresh = max(in_flight // 2, 2)
            self.cwnd = self.ssthresh + 3
            self.recover = snd_nxt
            return True
        return False

    def timeout(self, in_flight: int) -> None:
        """A retransmission timeout: start again from one segment."""
        self.ssthresh = max(in_flight // 2, 2)
        self.cwnd, self._grow, self.dupacks, self.recover = 1, 0, 0, None
