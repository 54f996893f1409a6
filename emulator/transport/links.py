"""The fault state of a real cluster: partitions, link settings, holds, pauses.

Every host keeps the same ``LinkFaults``: a control call is broadcast to all
of them, so each can judge both directions of its own links. A sender checks
a message against the cuts when it is sent and again when it leaves its
queue, and the receiver checks it on arrival: as in the simulation, a
message in flight when its link is cut is dropped. Loss, duplication,
reordering and extra latency are applied by the sender.

Changes arrive as ``apply(action, payload)`` with JSON payloads, the same
words as the simulation's fault API (``partition``, ``partition_oneway``,
``isolate``, ``heal``, ``link`` for ``set_link_oneway``, ``reset_link``,
``defaults``, ``hold``, ``release``, ``pause``, ``resume``) plus ``state``,
which replaces everything (used to bring a restarted node up to date).

Each cut has an id, as in the simulation: the controller gives it in the
payload (``{"groups": ..., "id": 3}``, so every host files the cut under the
same id; it replaces a cut with that id), or the host numbers it itself.
``heal`` with ``{"cuts": [3]}`` lifts those cuts only; with no ``cuts``,
every one. In ``to_json``, ``cut_ids`` lists the ids of ``rules`` in order.

What it gives up: latency is *added* to the real loopback latency, and a
host cannot hold or delay messages that a sender outside the cluster sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator import cuts as rules
from emulator.cuts import probability
from emulator.distributions import Constant, Distribution
from emulator.errors import ConfigError
from emulator.transport.wire import JsonObject, distribution_from_json, distribution_to_json
from emulator.validate import is_int

__all__ = ["ACTIONS", "LinkFaults", "Settings"]

#: Every action ``LinkFaults.apply`` understands.
ACTIONS = (
    "partition",
    "partition_oneway",
    "isolate",
    "heal",
    "link",
    "reset_link",
    "defaults",
    "hold",
    "release",
    "pause",
    "resume",
    "state",
)

_SETTING_NAMES = ("latency", "loss", "duplicate", "reorder")


@dataclass(frozen=True)
class Settings:
    """The effective settings of one directed link."""

    latency: Distribution = Constant(0.0)  # noqa: RUF009  (a Constant is immutable: one shared default is fine)
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0

    @property
    def plain(self) -> bool:
        """No extra latency, loss, duplication or reordering: the fast path."""
        return (
            not self.loss
            and not self.duplicate
            and not self.reorder
            and self.latency.constant
            and self.latency.mean == 0.0
        )


def _settings(payload: JsonObject) -> JsonObject:
    """The link settings given in ``payload``, validated (absent or None: not given)."""
    out: JsonObject = {}
    for key in _SETTING_NAMES:
        value = payload.get(key)
        if value is None:
            continue
        out[key] = distribution_from_json(value) if key == "latency" else probability(key, value)
    return out


def _name(payload: JsonObject, key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key!r} must be a node name, got {value!r}")
    return value


class LinkFaults:
    """Cuts, link overrides, held links and paused nodes, as JSON-settable state."""

    def __init__(self) -> None:
        self.version = 0
        self._rules: dict[int, rules.Cut] = {}  # id -> cut
        #: the id the next cut without one gets
        self.next_cut = 1
        self._links: dict[tuple[str, str], JsonObject] = {}
        self._defaults: JsonObject = {}
        self._held: dict[tuple[str, str], None] = {}
        self._paused: dict[str, None] = {}

    # -- questions ----------------------------------------------------------------

    def blocked(self, src: str, dst: str) -> bool:
        """Whether a partition drops traffic ``src -> dst`` now."""
        return any(rule.blocks(src, dst) for rule in self._rules.values())

    def settings(self, src: str, dst: str) -> Settings:
        """The effective latency, loss, duplicate and reorder of ``src -> dst``."""
        return Settings(**{**self._defaults, **self._links.get((src, dst), {})})

    def held(self, src: str, dst: str) -> bool:
        return (src, dst) in self._held

    def paused(self, name: str) -> bool:
        return name in self._paused

    # -- changes ------------------------------------------------------------------

    def apply(self, action: str, payload: JsonObject | None = None) -> None:
        """Apply one control action with its JSON payload.

        Raises:
            ConfigError: an unknown action or a malformed payload (nothing changes).
        """
        method = getattr(self, f"_do_{action}", None) if action in ACTIONS else None
        if method is None:
            raise ConfigError(f"unknown control action {action!r}; use one of {', '.join(ACTIONS)}")
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise ConfigError(f"the payload of {action!r} must be a JSON object, got {payload!r:.80}")
        method(payload)
        self.version += 1

    def _do_partition(self, payload: JsonObject) -> None:
        self._add("partition", payload)

    def _do_partition_oneway(self, payload: JsonObject) -> None:
        self._add("partition_oneway", payload)

    def _do_isolate(self, payload: JsonObject) -> None:
        self._add("isolate", payload)

    def _add(self, action: str, payload: JsonObject) -> None:
        cut = rules.from_json(action, payload)
        given = payload.get("id")
        if given is None:
            given = self.next_cut
        elif not is_int(given, ge=1):
            raise ConfigError(f"a cut's 'id' must be a positive integer, got {given!r:.80}")
        self._rules[given] = cut
        self.next_cut = max(self.next_cut, given + 1)

    def _do_heal(self, payload: JsonObject) -> None:
        ids = payload.get("cuts")
        if ids is None:
            self._rules.clear()
            return
        if not isinstance(ids, list) or not all(is_int(i) for i in ids):
            raise ConfigError(f"'cuts' must be a list of cut ids, e.g. [1, 3], got {ids!r:.80}")
        unknown = [i for i in ids if i not in self._rules]
        if unknown:
            raise ConfigError(
                f"heal({', '.join(map(repr, unknown))}): no such cut; the active ones are "
                f"{sorted(self._rules) or 'none'} (partition() returns the id)"
            )
        for i in ids:
            del self._rules[i]

    def _do_link(self, payload: JsonObject) -> None:
        pair = (_name(payload, "src"), _name(payload, "dst"))
        settings = _settings(payload)  # validate before touching anything
        self._links.setdefault(pair, {}).update(settings)

    def _do_reset_link(self, payload: JsonObject) -> None:
        self._links.pop((_name(payload, "src"), _name(payload, "dst")), None)

    def _do_defaults(self, payload: JsonObject) -> None:
        self._defaults.update(_settings(payload))

    def _do_hold(self, payload: JsonObject) -> None:
        a, b = _name(payload, "a"), _name(payload, "b")
        self._held[(a, b)] = self._held[(b, a)] = None

    def _do_release(self, payload: JsonObject) -> None:
        a, b = _name(payload, "a"), _name(payload, "b")
        self._held.pop((a, b), None)
        self._held.pop((b, a), None)

    def _do_pause(self, payload: JsonObject) -> None:
        self._paused[_name(payload, "name")] = None

    def _do_resume(self, payload: JsonObject) -> None:
        self._paused.pop(_name(payload, "name"), None)

    def _do_state(self, payload: JsonObject) -> None:
        fresh = LinkFaults.from_json(payload)
        self._rules, self._links, self._defaults = fresh._rules, fresh._links, fresh._defaults
        self.next_cut = fresh.next_cut
        self._held, self._paused = fresh._held, fresh._paused

    # -- JSON ---------------------------------------------------------------------

    def to_json(self) -> JsonObject:
        """The whole state; ``apply("state", it)`` on another host makes it equal."""
        return {
            "rules": [rule.to_json() for rule in self._rules.values()],
            "cut_ids": list(self._rules),
            "links": [{"src": s, "dst": d, **_settings_to_json(v)} for (s, d), v in self._links.items()],
            "defaults": _settings_to_json(self._defaults),
            "held": [list(pair) for pair in self._held],
            "paused": list(self._paused),
        }

    @classmethod
    def from_json(cls, data: JsonObject) -> LinkFaults:
        """A LinkFaults from ``to_json`` output.

        Raises:
            ConfigError: the data is malformed.
        """
        faults = cls()
        cuts = data.get("rules") or []
        ids = data.get("cut_ids")
        if ids is not None and (not isinstance(ids, list) or len(ids) != len(cuts)):
            raise ConfigError(f"'cut_ids' lists one id per rule, got {ids!r:.80}")
        for i, rule in enumerate(cuts):
            if not isinstance(rule, dict) or len(rule) != 1:
                raise ConfigError(
                    f'a rule is one of {{"partition"|"partition_oneway"|"isolate": ...}}, got {rule!r:.80}'
                )
            ((kind, args),) = rule.items()
            if kind not in rules.ACTIONS:
                raise ConfigError(f"unknown rule kind {kind!r}")
            faults.apply(kind, {**args, "id": ids[i]} if ids is not None and isinstance(args, dict) else args)
        for link in data.get("links") or []:
            faults.apply("link", link)
        faults.apply("defaults", data.get("defaults") or {})
        for pair in data.get("held") or []:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ConfigError(f"a held link is [a, b], got {pair!r:.80}")
            faults.apply("hold", {"a": pair[0], "b": pair[1]})
        for name in rules.json_names(data.get("paused") or [], "'paused'"):
            faults.apply("pause", {"name": name})
        return faults

    def describe(self) -> list[str]:
        """One line per active fault, for status pages."""
        lines = [f"{kind} {args}" for rule in self._rules.values() for kind, args in rule.to_json().items()]
        lines += [f"link {s}->{d} {_settings_to_json(v)}" for (s, d), v in self._links.items()]
        if self._defaults:
            lines.append(f"defaults {_settings_to_json(self._defaults)}")
        lines += [f"held {s}->{d}" for s, d in self._held]
        lines += [f"paused {name}" for name in self._paused]
        return lines


def _settings_to_json(settings: JsonObject) -> JsonObject:
    return {k: distribution_to_json(v) if k == "latency" else v for k, v in settings.items()}
