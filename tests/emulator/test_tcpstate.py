"""TCP's settings, which every Tcb reads (emulator/tcpstate.py)."""

import pytest

from emulator.tcp import TcpSettings


def test_tcp_settings_reject_nonsense():
    """A TcpSettings value that cannot work says which and why."""
    with pytest.raises(ValueError, match="user_timeout must be a positive number"):
        TcpSettings(user_timeout=0)
    with pytest.raises(ValueError, match="mss must be a whole number"):
        TcpSettings(mss=0)
    for name in ("syn_retries", "synack_retries", "orphan_retries", "keepalive_probes"):
        with pytest.raises(ValueError, match=f"{name} must be a whole number of retries >= 0"):
            TcpSettings(**{name: -1})


def test_linux_timeout_is_linuxs_tcp_model_timeout():
    """15 retries from a 200 ms RTO doubling to 120 s are the 924.6 s default user timeout (tcp_retries2), 8 the
    102.2 s an orphan retransmits (tcp_orphan_retries), 6 from 1 s the 127 s of a connect's SYN retries."""
    from emulator.tcpstate import linux_timeout

    assert TcpSettings().user_timeout == pytest.approx(linux_timeout(15, 0.2, 120.0)) == pytest.approx(924.6)
    assert linux_timeout(TcpSettings().orphan_retries, 0.2, 120.0) == pytest.approx(102.2)
    assert linux_timeout(TcpSettings().syn_retries, 1.0, 120.0) == pytest.approx(127.0)
