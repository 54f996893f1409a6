"""Messages and the copy that makes each receiver own its body.

A body is a JSON-compatible dict with a string ``"type"``. ``copy_body``
validates and copies in one pass, so a message never carries a shared mutable
object from one node to another and never carries something a real network
could not (a set, a float NaN, an object). Flat bodies, the common case, cost
one ``dict.copy`` and a scan of their values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator.errors import MessageError
from emulator.peers import Peers
from emulator.speedups import native

if TYPE_CHECKING:
    from emulator.network import Endpoint, Link

__all__ = ["Message", "copy_body", "copy_value", "shown"]

_ATOMS = frozenset({str, int, bool, type(None)})


class Message:
    """One message as a handler receives it.

    Attributes:
        src: the sender's name.
        dest: the receiver's name.
        body: the receiver's own copy of the JSON body; ``body["type"]`` names it.
    """

    __slots__ = ("_at", "_link", "_to", "body", "dest", "src")
    _at: int  # set by the network: the virtual time it is delivered at, in ns (kernel-private)

    def __init__(self, src: str, dest: str, body: dict[str, Any], link: Link | None = None, to: Endpoint | None = None):
        self.src = src
        self.dest = dest
        self.body = body
        self._link = link  # the network's Link it travels on (kernel-private)
        self._to = to  # the receiver's incarnation when it was sent (kernel-private)
        # _at, set by the network: the virtual time it is delivered at, in ns (kernel-private)

    @property
    def type(self) -> str:
        kind: str = self.body["type"]  # copy_body made sure it is one
        return kind

    def to_json(self) -> dict[str, Any]:
        """The Maelstrom envelope ``{"src", "dest", "body"}``."""
        return {"src": self.src, "dest": self.dest, "body": self.body}

    def __repr__(self) -> str:
        return f"Message({self.src!r} -> {self.dest!r}, {self.body!r})"


def copy_body(body: object) -> dict[str, Any]:
    """A validated deep copy of a message body.

    Raises:
        MessageError: ``body`` is not a dict, has no string ``"type"``, or
            holds something JSON cannot carry.
    """
    if type(body) is not dict:
        raise MessageError(f"a message body must be a dict with a 'type', got {type(body).__name__}: {body!r:.80}")
    out = body.copy()
    for key, value in out.items():
        if type(key) is not str:
            raise MessageError(f"message body keys must be strings (JSON objects), got key {key!r}")
        if type(value) not in _ATOMS:
            out[key] = _copy_nested(value, key)
    kind = out.get("type")
    if type(kind) is not str or not kind:
        raise MessageError(
            f'a message body needs a non-empty string "type", e.g. {{"type": "read", ...}}; got {body!r:.120}'
        )
    return out


def _copy_nested(value: Any, path: str) -> Any:
    """``copy_value`` of a body's list or object, with a MessageError for one nested past the recursion limit.

    Called for a body's values that are not atoms only (so a flat body pays nothing for the check).
    """
    try:
        return copy_value(value, path)
    except RecursionError:
        raise MessageError(
            f"{path} nests lists or objects too deeply to copy (past Python's recursion limit); flatten it (the real "
            "transport refuses far shallower bodies: emulator.transport.wire.MAX_DEPTH levels)"
        ) from None


def copy_value(value: Any, path: str = "value") -> Any:
    """A validated deep copy of a JSON value (tuples and ``Node.peers`` become lists)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is float:
        if math.isnan(value) or math.isinf(value):
            raise MessageError(f"{path} is {value!r}; JSON has no NaN or infinity, send null or a string")
        return value
    if kind is list or kind is tuple or kind is Peers:
        return [copy_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise MessageError(f"{path} has key {key!r}; JSON object keys must be strings")
            out[key] = copy_value(item, f"{path}.{key}")
        return out
    if isinstance(value, (str, int, float)):  # subclasses such as IntEnum: send the plain value
        return copy_value((str if isinstance(value, str) else int if isinstance(value, int) else float)(value), path)
    raise MessageError(
        f"{path} is a {kind.__name__} ({shown(value):.60}), which JSON cannot carry; "
        "send dicts, lists, strings, numbers, booleans or None"
    )


def shown(value: Any) -> str:
    """``repr(value)`` as the same text in every process: a set's items sorted, no object's address.

    The text can travel in an error reply, into a history and a trace.
    """
    if isinstance(value, (set, frozenset)):
        try:
            items = sorted(value)
        except TypeError:  # items of no one order: say how many
            return f"{len(value)} items"
        inner = ", ".join(map(repr, items))
        return f"{{{inner}}}" if type(value) is set else f"{type(value).__name__}({{{inner}}})"
    if getattr(type(value), "__repr__", None) is object.__repr__:  # the default: it shows the address
        return f"<{type(value).__qualname__}>"
    return repr(value)


#: ``copy_body`` as the message path calls it: compiled when the C core runs (``emulator.speedups``),
#: with the same copy and the same errors (a body it does not copy as it is goes to ``copy_body``).
fast_copy_body: Callable[[object], dict[str, Any]] = (
    functools.partial(native.copy_body, copy_body, _copy_nested) if native is not None else copy_body
)
