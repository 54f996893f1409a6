"""TCP's settings, which every Tcb reads (emulator/tcpstate.py)."""

import asyncio
import errno
import hashlib
import math

import pytest

import emulator as em
from emulator.tcp import TcpSettings
from emulator.tcpstate import MAX_SECONDS, MIN_SECONDS, linux_timeout
from tests.common.hosts import digest_server


def test_tcp_settings_reject_nonsense():
    """A TcpSettings value that cannot work says which and why."""
    with pytest.raises(ValueError, match="user_timeout must be a positive number"):
        TcpSettings(user_timeout=0)
    with pytest.raises(ValueError, match="mss must be a whole number"):
        TcpSettings(mss=0)
    for name in ("syn_retries", "synack_retries", "orphan_retries", "keepalive_probes"):
        with pytest.raises(ValueError, match=f"{name} must be a whole number of retries (>= 0|from 0 to)"):
            TcpSettings(**{name: -1})


def test_linux_timeout_is_linuxs_tcp_model_timeout():
    """15 retries from a 200 ms RTO doubling to 120 s are the 924.6 s default user timeout (tcp_retries2), 8 the
    102.2 s an orphan retransmits (tcp_orphan_retries), 6 from 1 s the 127 s of a connect's SYN retries."""
    from emulator.tcpstate import linux_timeout

    assert TcpSettings().user_timeout == pytest.approx(linux_timeout(15, 0.2, 120.0)) == pytest.approx(924.6)
    assert linux_timeout(TcpSettings().orphan_retries, 0.2, 120.0) == pytest.approx(102.2)
    assert linux_timeout(TcpSettings().syn_retries, 1.0, 120.0) == pytest.approx(127.0)


@pytest.mark.parametrize("name", ["rto_initial", "rto_min", "rto_max", "user_timeout", "fin_timeout", "keepalive_time"])
@pytest.mark.parametrize("value", [1e300, math.inf, math.nan, 5e-324, -1.0, True, "1"])
def test_a_time_outside_a_nanosecond_to_1e9_seconds_is_refused(name, value):
    """A TcpSettings time is refused unless in [MIN_SECONDS, MAX_SECONDS] (1 ns to 1e9 s), with the range in the
    message (huge ones overflowed deep in a timer: 'cannot convert float infinity to integer')."""
    with pytest.raises(em.ConfigError, match=rf"TcpSettings\.{name} must be a positive number of seconds, from 1e-09 "):
        TcpSettings(**{name: value})
    assert (MIN_SECONDS, MAX_SECONDS) == (1e-9, 1e9)
    assert getattr(TcpSettings(**{name: MAX_SECONDS}), name) == MAX_SECONDS


@pytest.mark.parametrize("name, most", [("syn_retries", 127), ("synack_retries", 255), ("orphan_retries", 255)])
def test_retries_are_refused_past_linuxs_bounds(name, most):
    """syn_retries takes 0 to 127 (MAX_TCP_SYNCNT), synack_retries and orphan_retries 0 to 255, as Linux."""
    assert getattr(TcpSettings(**{name: most}), name) == most
    with pytest.raises(em.ConfigError, match=rf"{name} must be a whole number of retries from 0 to {most}, as Linux"):
        TcpSettings(**{name: most + 1})
    assert TcpSettings(keepalive_probes=10**9).keepalive_probes == 10**9  # only compared: no bound needed


def test_every_setting_is_checked_when_assigned_too():
    """An assignment (sim.hosts.tcp.user_timeout = ..., the usual way) is checked as the constructor is; a
    misspelt setting is refused, not kept as an attribute nothing reads."""
    sim = em.Simulation(seed=1)
    with pytest.raises(em.ConfigError, match=r"user_timeout must be .*got True \(a bool is not one\)"):
        sim.hosts.tcp.user_timeout = True
    with pytest.raises(em.ConfigError, match="rcvbuf must be a whole number of bytes >= 1, got 0"):
        sim.hosts.tcp.rcvbuf = 0
    with pytest.raises(em.ConfigError, match="TcpSettings has no setting 'user_timout'; its settings are mss, "):
        sim.hosts.tcp.user_timout = 30
    sim.hosts.tcp.user_timeout = 30
    assert sim.hosts.tcp.user_timeout == 30 and not hasattr(sim.hosts.tcp, "user_timout")
    sim.close()


def test_the_longest_and_shortest_times_keep_every_timer_in_range():
    """At the bounds (an RTO of 1e9 s doubled over 127 SYN retries; Linux's orphan timeout from a 1 ns rto_min
    and a 1e9 s rto_max over 255 retries) the timers' arithmetic stays finite: a connect through a partition
    fails with ETIMEDOUT after 2**128 - 1 initial RTOs, in both cores, with no error in the loop."""
    seen = {}

    async def client():
        try:
            await asyncio.open_connection("server", 9)
        except OSError as exc:
            seen["errno"], seen["at"] = exc.errno, asyncio.get_running_loop().time()

    sim = em.Simulation(seed=1)
    tcp = sim.hosts.tcp
    tcp.rto_initial, tcp.syn_retries, tcp.rto_min, tcp.rto_max, tcp.orphan_retries = 1e9, 127, 1e-9, 1e9, 255
    assert math.isfinite(linux_timeout(tcp.orphan_retries, tcp.rto_min, tcp.rto_max) * 1e9)
    sim.add_host("server")
    sim.add_host("client", client)
    sim.network.partition(["server"], ["client"])
    sim.run()
    sim.close()
    assert seen["errno"] == errno.ETIMEDOUT and seen["at"] == pytest.approx(1e9 * (2**128 - 1))
    assert not sim.errors


def test_buffers_of_any_size_carry_a_stream():
    """Byte counts have no upper bound (only whole-number arithmetic reads them): with 10**30-byte buffers and
    segments a stream still arrives whole."""
    got = []

    async def client():
        reader, writer = await asyncio.open_connection("server", 9000)
        writer.write(b"x" * 100_000)
        writer.write_eof()
        got.append(await reader.read())

    sim = em.Simulation(seed=1)
    sim.hosts.tcp.mss = sim.hosts.tcp.sndbuf = sim.hosts.tcp.rcvbuf = 10**30
    sim.add_host("server", digest_server)
    sim.add_host("client", client)
    sim.run(until=10)
    sim.close()
    assert got == [hashlib.sha256(b"x" * 100_000).hexdigest().encode() + b" 100000"] and not sim.errors
