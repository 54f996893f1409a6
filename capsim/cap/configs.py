"""The configurations the CAP demonstration compares, and how to add your own.

Each configuration names a protocol of the library, its settings for a
cluster of ``nodes`` servers, and the claim it makes, in one line, so the
report can print the claim beside the numbers that test it.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulator import ConfigError
from emulator.node import handlers_of
from faults.scenario import check_config, toml_problem
from nodes.registry import resolve


@dataclass
class Config:
    """One configuration: a protocol, its settings, and its CAP claim.

    Attributes:
        name: short, for the table (``cp``, ``ap``, ``async``).
        protocol: a registered protocol name or ``module:Class``.
        settings: a function of the node count returning the constructor kwargs.
        claim: what the configuration promises and gives up, in one line.
        label: a longer name for titles.
        conditions: what the claim needs to hold (clocks, writers, leases, fencing), in one line; printed
            beside the claim by ``capsim cap``, its ``--help`` and its report.
    """

    name: str
    protocol: str
    settings: Callable[[int], dict]
    claim: str
    label: str = ""
    params: dict = field(default_factory=dict)
    conditions: str = ""

    def node_class(self):
        return resolve(self.protocol)

    def kwargs(self, nodes: int) -> dict:
        return {**self.settings(nodes), **self.params}


def _majority(nodes: int) -> int:
    return nodes // 2 + 1


def _side(nodes: int) -> int:
    """2, or 1 when the minority of the CAP partition is a single node."""
    return max(1, min(2, (nodes - 1) // 2))


BUILTIN: dict[str, Config] = {
    "cp": Config(
        "cp",
        "primary-replica",
        lambda n: {"mode": "semi-sync", "acks": _majority(n) - 1, "fencing": True},
        "linearizable; refuses where it cannot reach a majority (PC/EC)",
        "CP: majority replication with a fenced primary (Raft-like)",
        conditions="acks + 1 >= a majority and fencing on (both set here); reads go through the primary's "
        "log, not leases (lease reads would need clocks that never jump); no clock condition otherwise",
    ),
    "ap": Config(
        "ap",
        "quorum",
        # R and W fit the smaller side, so each side can gather a sloppy quorum on its own.
        lambda n: {
            "n": min(3, n),
            "r": _side(n),
            "w": _side(n),
            "sloppy": True,
            "hinted_handoff": True,
            "read_repair": True,
            "versioning": "lww",
            "anti_entropy": 0.5,
        },
        "answers on both sides; may read stale data and lose concurrent updates (PA; else EC where R + W > N, "
        "as at 5 or more nodes, EL at 3 or 4, where R = W = 1)",
        "AP: sloppy quorum, last-writer-wins, hinted handoff, read repair",
        conditions="convergence after the heal needs hinted handoff or anti-entropy on (both set here); "
        "last-writer-wins orders writes by the coordinators' clocks: a clock ahead wins",
    ),
    "async": Config(
        "async",
        "primary-replica",
        lambda n: {"mode": "async", "fencing": False},
        "fast, and both sides answer; a failover loses what the old primary acknowledged (PA/EL)",
        "primary-replica, asynchronous replication, failover without fencing",
        conditions="none: it promises no consistency, so there is nothing to hold",
    ),
    "quorum": Config(
        "quorum",
        "quorum",
        lambda n: {"n": n, "r": _majority(n), "w": _majority(n), "sloppy": False, "read_repair": True},
        "no read misses a write acknowledged before it began; a regular register, not linearizable (in-flight "
        "writes, cas); refuses without a quorum, and pays R or W round trips even without a partition (PC/EC)",
        "strict majority quorum (R + W > N), no sloppy quorum",
        conditions="R + W > N and not sloppy (both set here); clocks in sync (writes are stamped by the "
        "coordinator's clock); any number of writers per key",
    ),
    "sync": Config(
        "sync",
        "primary-replica",
        lambda n: {"mode": "sync", "fencing": True},
        "linearizable and loses nothing; any unreachable replica stops every write, and a new primary serves "
        "nothing until it commits (PC/EC)",
        "primary-replica, synchronous replication to every replica",
        conditions="fencing on (set here); reads go through the primary's log, not leases (lease reads would "
        "need clocks that never jump)",
    ),
    "multi-primary": Config(
        "multi-primary",
        "multi-primary",
        lambda n: {"resolution": "lww", "anti_entropy": 0.25},
        "every node takes writes, so both sides answer; "
        "concurrent writes: the last writer wins, the rest are lost (PA/EL)",
        "multi-primary, asynchronous replication, last-writer-wins",
        conditions="convergence needs anti-entropy on (set here); last-writer-wins orders writes by the "
        "accepting nodes' clocks: a clock ahead wins",
    ),
}

DEFAULT = ("cp", "ap", "async")


def claim_line(config: Config) -> str:
    """``name: claim. Conditions: ...``, as ``capsim cap`` prints it under its table."""
    conditions = f" Conditions: {config.conditions}." if config.conditions else ""
    return f"{config.name}: {config.claim}.{conditions}"


def choose(specs: list[str] | None) -> list[Config]:
    """The configurations named by ``--config`` values (names, or TOML files of configs).

    Raises:
        ConfigError: an unknown name or a bad file, saying what is available.
    """
    if not specs:
        return [BUILTIN[name] for name in DEFAULT]
    chosen: list[Config] = []
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            if part.endswith(".toml"):
                chosen += load(Path(part))
            elif part in BUILTIN:
                chosen.append(BUILTIN[part])
            else:
                raise ConfigError(
                    f"unknown configuration {part!r}; choose from {', '.join(BUILTIN)} "
                    "or give a .toml file of [[config]] tables"
                )
    return chosen


#: The messages ``capsim cap``'s clients send: a configuration's protocol answers each (``handle_<type>``).
STORE_MESSAGES = ("read", "write", "cas")
#: The registered protocols that are key-value stores of their own (no backends behind them).
STORES = ("lin-kv", "primary-replica", "quorum", "multi-primary", "sharded-kv")

#: The keys a ``[[config]]`` table takes.
_KEYS = ("name", "protocol", "settings", "claim", "label", "conditions")


def load(path: Path) -> list[Config]:
    """Configurations from a TOML file of ``[[config]]`` tables (name, protocol, claim, conditions, [settings])."""
    text = ""
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: a byte that is not UTF-8 at offset {exc.start}; expected a TOML text file"
        ) from None
    except ValueError as exc:  # TOMLDecodeError, or an int of more digits than Python converts
        raise ConfigError(f"{path}: not valid TOML ({toml_problem(exc, text)})") from None
    tables = data.get("config")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{path}: expected one or more [[config]] tables with name, protocol and settings")
    for key in data:
        if key != "config":
            raise ConfigError(f"{path}: unknown key {key!r}; a config file holds [[config]] tables only")
    configs = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: config #{i + 1}: expected a [[config]] table, found {table!r}")
        for key in table:  # a misspelt key (setting for settings) would be ignored, and its settings with it
            if key not in _KEYS:
                raise ConfigError(
                    f"{path}: config #{i + 1}: unknown key {key!r}; a [[config]] table takes {', '.join(_KEYS)}"
                )
        for key in ("name", "protocol"):
            if not isinstance(table.get(key), str):
                raise ConfigError(f"{path}: config #{i + 1}: key {key!r} must be a string, found {table.get(key)!r}")
        if not table["name"].strip() or not table["name"].isprintable():  # a column heading, and a terminal's text
            raise ConfigError(
                f"{path}: config #{i + 1}: name must be printable text (a column of the table), found {table['name']!r}"
            )
        settings = table.get("settings", {})
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: config {table['name']!r}: 'settings' must be a table, found {settings!r}")
        try:
            cls = resolve(table["protocol"])
            check_config(cls, settings)
        except ValueError as exc:  # an unknown protocol, or settings its constructor does not take
            raise ConfigError(f"{path}: config {table['name']!r}: {exc}") from None
        missing = [f"handle_{kind}" for kind in STORE_MESSAGES if kind not in handlers_of(cls)]
        if missing:  # a queue's sink, say: it would answer nothing, and a history of nothing looks linearizable
            raise ConfigError(
                f"{path}: config {table['name']!r}: protocol {table['protocol']!r} is not a key-value store: it has "
                f"no {', '.join(missing)} for the clients' {', '.join(STORE_MESSAGES)} messages; name a store "
                f"({', '.join(STORES)}) or a class of your own with those handlers"
            )
        configs.append(
            Config(
                table["name"],
                table["protocol"],
                functools.partial(_fixed, dict(settings)),
                str(table.get("claim", "")),
                str(table.get("label", table["name"])),
                conditions=str(table.get("conditions", "")),
            )
        )
    return configs


def _fixed(settings: dict, nodes: int) -> dict:
    """The settings of a config file's table, whatever the node count (a fresh copy each time)."""
    return dict(settings)
