"""What travels over HTTP: Maelstrom envelopes, and latency settings as JSON.

A request to ``POST /msg`` carries one envelope ``{"src", "dest", "body"}``
or a JSON array of them (the transport batches what queued up for one peer
while its previous request was in flight). Everything is validated before
anything is delivered, so a request is taken whole or refused whole, and a
refusal is a ``WireError`` whose ``status`` is the HTTP answer: 400 for
malformed JSON or envelopes, 404 for a message addressed to another node.

Guarantees: a body that passes ``parse_envelopes`` is a dict with a
non-empty string ``type`` and integer ``msg_id`` / ``in_reply_to`` when
present, so the node runtime can never trip over it; and whatever it holds
can travel again (every number is finite: ``1e400``, which Python reads as
``inf``, is refused) and be kept in a node's file storage (a request nests
at most ``MAX_DEPTH`` levels of arrays and objects), so a value taken from
one request can never break a reply or a restart later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from emulator.distributions import Constant, Distribution, Exponential, LogNormal, Pareto, Uniform, as_distribution
from emulator.errors import ConfigError
from emulator.message import Message
from emulator.transport.errors import WireError
from emulator.validate import is_number, nesting

__all__ = [
    "MAX_BATCH",
    "MAX_BODY",
    "MAX_DEPTH",
    "JsonObject",
    "Latency",
    "distribution_from_json",
    "distribution_to_json",
    "encode_envelopes",
    "parse_envelopes",
    "parse_object",
]

#: A JSON object, as parsed.
JsonObject = dict[str, Any]
#: A latency setting: a Distribution, or a constant in seconds.
Latency = Distribution | float

#: Largest request body a node accepts, in bytes (aiohttp answers 413 above it).
MAX_BODY = 1 << 20
#: Most envelopes in one request.
MAX_BATCH = 4096
#: Most levels of arrays and objects in one request, the envelope included (a node's storage file
#: nests a stored value inside a few levels of its own, and reads back at most ``storage.MAX_NESTING``).
MAX_DEPTH = 100


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (send null or a string)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise WireError(400, f"the number {text:.40} is too large for a float; send it as a string")
    return value


def _loads(raw: bytes | str) -> Any:
    """Strict JSON: no NaN/Infinity, finite numbers, at most MAX_DEPTH levels; any failure is a 400 saying why."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:  # deeper than the parser goes: deeper than MAX_DEPTH
        raise WireError(400, f"request body is nested deeper than {MAX_DEPTH} levels of arrays and objects") from None
    except WireError:
        raise
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WireError(400, f"request body is not valid JSON: {exc}") from None
    if _opening(raw) > MAX_DEPTH and nesting(value, MAX_DEPTH) > MAX_DEPTH:  # the count of brackets bounds the depth
        raise WireError(400, f"request body is nested deeper than {MAX_DEPTH} levels of arrays and objects")
    return value


def _opening(raw: bytes | str) -> int:
    if isinstance(raw, bytes):
        return raw.count(b"[") + raw.count(b"{")
    return raw.count("[") + raw.count("{")


def parse_object(raw: bytes | str, what: str = "request body") -> JsonObject:
    """A JSON object from ``raw`` (an empty body is ``{}``).

    Raises:
        WireError: 400 if it is not JSON or not an object.
    """
    if not raw or not raw.strip():
        return {}
    value = _loads(raw)
    if not isinstance(value, dict):
        raise WireError(400, f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def parse_envelopes(raw: bytes | str, me: str) -> list[Message]:
    """The messages of one ``POST /msg`` request addressed to node ``me``.

    Raises:
        WireError: 400 for malformed JSON or envelopes, 404 for a message to another node.
    """
    value = _loads(raw)
    items = value if isinstance(value, list) else [value]
    if not items:
        raise WireError(400, 'an empty batch: send an envelope {"src", "dest", "body"} or a list of them')
    if len(items) > MAX_BATCH:
        raise WireError(400, f"a batch holds at most {MAX_BATCH} envelopes, got {len(items)}")
    return [_envelope(item, me, i if len(items) > 1 else None) for i, item in enumerate(items)]


def _envelope(item: object, me: str, index: int | None) -> Message:
    where = "" if index is None else f"envelope {index}: "
    if not isinstance(item, dict):
        raise WireError(400, f'{where}expected an envelope object {{"src", "dest", "body"}}, got {type(item).__name__}')
    src, dest, body = item.get("src"), item.get("dest"), item.get("body")
    if not isinstance(src, str) or not src:
        raise WireError(400, f'{where}"src" must be the sender\'s name, a non-empty string')
    if not isinstance(dest, str) or not dest:
        raise WireError(400, f'{where}"dest" must be the receiver\'s name, a non-empty string')
    if not isinstance(body, dict):
        raise WireError(400, f'{where}"body" must be a JSON object with a "type"')
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise WireError(400, f'{where}body needs a non-empty string "type", e.g. {{"type": "read"}}')
    for field in ("msg_id", "in_reply_to"):
        value = body.get(field)
        if value is not None and (type(value) is not int):
            raise WireError(400, f"{where}body {field!r} must be an integer, got {value!r:.40}")
    if dest != me:
        raise WireError(404, f"{where}this is node {me!r}; there is no node {dest!r} here")
    return Message(src, dest, body)


def encode_envelopes(envelopes: list[JsonObject]) -> bytes:
    """One request body for ``envelopes`` (a bare envelope when there is one)."""
    payload = envelopes[0] if len(envelopes) == 1 else envelopes
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


# -- latency settings as JSON -------------------------------------------------------

_KINDS: dict[str, Callable[[Any], Distribution]] = {
    "constant": lambda v: Constant(v),
    "uniform": lambda v: Uniform(*v),
    "exponential": lambda v: Exponential(v),
    "lognormal": lambda v: LogNormal(*v),
    "pareto": lambda v: Pareto(*v),
}


def distribution_to_json(value: Latency) -> JsonObject:
    """``{"uniform": [low, high]}`` and the like, for a Distribution or a number of seconds."""
    dist = as_distribution(value, "latency")
    if isinstance(dist, Constant):
        return {"constant": dist.value}
    if isinstance(dist, Uniform):
        return {"uniform": [dist.low, dist.high]}
    if isinstance(dist, Exponential):
        return {"exponential": dist.mean}
    if isinstance(dist, LogNormal):
        return {"lognormal": [dist.median, dist.sigma]}
    if isinstance(dist, Pareto):
        return {"pareto": [dist.scale, dist.alpha, dist.cap]}
    raise ConfigError(
        f"the real transport cannot send the distribution {dist!r}; use Constant, Uniform, "
        "Exponential, LogNormal or Pareto"
    )


def distribution_from_json(spec: object) -> Distribution:
    """The Distribution a ``distribution_to_json`` spec (or a plain number) stands for.

    Raises:
        ConfigError: not a known spec, or bad parameters.
    """
    if is_number(spec):
        return as_distribution(spec, "latency")
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, args),) = spec.items()
        make = _KINDS.get(kind)
        if make is not None:
            try:
                return make(args)
            except TypeError:
                pass
    raise ConfigError(
        f'latency must be seconds or one of {{"constant": s}}, {{"uniform": [low, high]}}, '
        f'{{"exponential": mean}}, {{"lognormal": [median, sigma]}}, '
        f'{{"pareto": [scale, alpha, cap]}}; got {spec!r:.80}'
    )
