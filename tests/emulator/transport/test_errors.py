"""The real transport's errors: all under EmulatorError, each carrying what a caller acts on."""

import pytest

import emulator as em
import emulator.transport as transport
from emulator.transport.errors import ControlError, LaunchError, TransportError, WireError


@pytest.mark.parametrize("cls", [WireError, ControlError, LaunchError])
def test_every_transport_error_is_a_transport_error_and_an_emulator_error(cls):
    """One `except em.EmulatorError` catches the real transport's failures too."""
    assert issubclass(cls, TransportError) and issubclass(cls, em.EmulatorError)


def test_only_a_wire_error_is_a_value_error():
    """A refused request is bad input (ValueError); a failed control call or launch is not."""
    assert issubclass(WireError, ValueError)
    assert not issubclass(ControlError, ValueError) and not issubclass(LaunchError, ValueError)


def test_a_wire_error_carries_its_http_status_and_text():
    """WireError(413, text): .status is what the server answers, str() and .text the reason."""
    error = WireError(413, "body over 1048576 bytes; send smaller batches")
    assert (error.status, error.text, str(error)) == (413, error.text, "body over 1048576 bytes; send smaller batches")


def test_a_control_error_has_no_status_when_the_node_was_unreachable():
    """status None means 'could not reach it'; a refusal keeps its HTTP status."""
    assert ControlError("cannot reach http://127.0.0.1:1").status is None
    assert ControlError("wrong control token", 403).status == 403


def test_a_launch_error_names_the_node_and_its_exit_status():
    """LaunchError keeps the failed node and its exit code (None while it has not exited)."""
    error = LaunchError("n1 exited with 3", name="n1", returncode=3)
    assert (str(error), error.name, error.returncode) == ("n1 exited with 3", "n1", 3)
    assert LaunchError("n2 never became healthy", name="n2").returncode is None


def test_the_package_exports_the_same_classes():
    """emulator.transport re-exports the four errors."""
    assert (transport.TransportError, transport.WireError, transport.ControlError, transport.LaunchError) == (
        TransportError,
        WireError,
        ControlError,
        LaunchError,
    )
