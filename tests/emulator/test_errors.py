"""Errors: one base class, Maelstrom's definite / indefinite split."""

import pytest

import emulator as em
from emulator import errors


@pytest.mark.parametrize("code, definite", [(0, False), (10, True), (11, True), (13, False), (20, True), (22, True)])
def test_rpcerror_knows_which_codes_are_definite(code, definite):
    """Codes follow Maelstrom's registry: 11, 20, 22 definite; 0 and 13 not."""
    assert em.RPCError(code, "x").definite is definite


def test_an_unknown_code_is_indefinite_unless_told():
    """A code outside the registry is indefinite by default; definite= overrides it."""
    assert not em.RPCError(1000).definite
    assert em.RPCError(1000, definite=True).definite


def test_every_error_derives_from_emulatorerror():
    """All capsim errors can be caught as EmulatorError; misuse ones as ValueError/TypeError too."""
    for name in ("Timeout", "RPCError", "Deadlock", "Unfinished", "NotAllowed", "ConfigError", "MessageError"):
        assert issubclass(getattr(em, name), em.EmulatorError)
    assert issubclass(em.ConfigError, ValueError) and issubclass(em.MessageError, TypeError)
    assert not em.Timeout("x").definite


def test_an_error_travels_as_a_maelstrom_error_body():
    """to_body gives the {type: error, code, text} body a handler's error is sent as."""
    assert em.RPCError(errors.KEY_DOES_NOT_EXIST, "no key").to_body() == {"type": "error", "code": 20, "text": "no key"}
