"""Reassembly and congestion control, on their own."""

from hypothesis import given
from hypothesis import strategies as st

from emulator.tcpbuffers import Reassembly, Reno


@given(
    data=st.binary(min_size=1, max_size=2000),
    cuts=st.lists(st.integers(1, 1999), max_size=30),
    order=st.randoms(use_true_random=False),
    copies=st.integers(1, 3),
)
def test_segments_in_any_order_and_any_number_of_copies_give_back_the_stream(data, cuts, order, copies):
    """Whatever order segments arrive in, however often, the reader gets each byte once, in order."""
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    segments = [(bounds[i], data[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)] * copies
    order.shuffle(segments)
    rx = Reassembly(0)
    for seq, chunk in segments:
        if not rx.duplicate(seq, len(chunk)):
            rx.add(seq, chunk, room=1 << 20)
    assert bytes(rx.rcvq) == data and rx.rcv_nxt == len(data)


def test_an_early_fin_ends_the_stream_only_once_the_bytes_before_it_arrive():
    """A FIN that overtakes the last data is kept until the gap is filled."""
    rx = Reassembly(0)
    assert rx.fin(5) is False
    rx.add(2, b"cde", room=100)
    assert not rx.fin_in
    rx.add(0, b"ab", room=100)
    assert rx.fin_in and rx.read(10) == b"abcde" and rx.rcv_nxt == 6


def test_the_window_bounds_what_is_taken():
    """Bytes beyond the receive window are not taken (the sender will send them again)."""
    rx = Reassembly(0)
    rx.add(0, b"abcdef", room=4)
    assert bytes(rx.rcvq) == b"abcd" and rx.rcv_nxt == 4


def test_slow_start_then_congestion_avoidance_then_a_timeout():
    """The window doubles per round trip from 10, grows by one per round trip past ssthresh, and falls to 1."""
    reno = Reno()
    reno.acked(10, 10)
    assert reno.cwnd == 20
    reno.ssthresh = 20
    for _ in range(20):
        reno.acked(1, 0)
    assert reno.cwnd == 21
    reno.timeout(in_flight=21)
    assert (reno.cwnd, reno.ssthresh) == (1, 10)


def test_three_duplicate_acks_trigger_fast_retransmit_and_recovery_ends_at_the_recovery_point():
    """The third duplicate retransmits; a partial ACK retransmits again; a full one deflates to ssthresh."""
    reno = Reno()
    assert [reno.duplicate(in_flight=10, snd_nxt=1000) for _ in range(3)] == [False, False, True]
    assert (reno.ssthresh, reno.cwnd, reno.recover) == (5, 8, 1000)
    assert reno.acked(1, 500) is True  # partial: the next segment was lost too
    assert reno.acked(1, 1000) is False and reno.cwnd == 5 and reno.recover is None
