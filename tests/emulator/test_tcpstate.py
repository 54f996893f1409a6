"""TCP's settings, which every Tcb reads (emulator/tcpstate.py)."""

import pytest

from emulator.tcp import TcpSettings


def test_tcp_settings_reject_nonsense():
    """A TcpSettings value that cannot work says which and why."""
    with pytest.raises(ValueError, match="user_timeout must be a positive number"):
        TcpSettings(user_timeout=0)
    with pytest.raises(ValueError, match="mss must be a whole number"):
        TcpSettings(mss=0)
