"""Scenario files: a cluster, its network, a workload, faults, checks and phases, in TOML.

::

    name = "lin-kv under partitions"       # optional; default: the file's stem
    seed = 1                               # optional; the default seed of a run

    [cluster]
    protocol = "lin-kv"                    # a registered name, "package.module:Class", or "module:function"
                                           #   for a host program (an async function; see Cluster)
    nodes = 5                              # servers n0 .. n4
    primary = "n0"                         # optional: for isolate-primary, a name or "module:function"
    config = { leader = "n0" }             # keyword arguments of the protocol's constructor

    [network]                              # every link's defaults (see faults.spec for latencies)
    preset = "hostile"                     # optional: start from a preset (see Network), then override;
                                           #   network = "hostile" (a string, before any table) is short for it
    latency = { uniform = [0.001, 0.005] }
    loss = 0.0
    duplicate = 0.0
    reorder = 0.0                          # the share of messages that may overtake others
    fifo = true                            # links keep order (except that share); false: independent delays

    [workload]                             # see faults.workload (unique = fresh-key writes,
                                           #   single_writer = one writer per key,
                                           #   final_reads = read every key at the end)
    clients = 4
    rate = 40                              # ops per second, all clients together
    keys = 3
    distribution = "uniform"               # or "hot-key", with hot = 0.8
    mix = { read = 0.5, write = 0.4, cas = 0.1 }
    timeout = 1.0
    duration = 20                          # default: every phase

    checks = ["linearizable"]              # (top level, before any table) or a [checks] table;
                                           #   node-errors is always added:
    [checks]                               #   name = true, or name = { parameter = value }
    linearizable = { timeout = 30 }

    [faults]                               # a random nemesis (see faults.schedule.RandomNemesis) ...
    kinds = ["partition", "crash"]         #   or { partition = 2, crash = 1 }
    interval = 4.0
    duration = [1.0, 4.0]
    # ... or explicit steps:  [[faults.steps]]  at = 2.0  kind = "partition"  duration = 3.0  shape = "halves"

    [[phases]]                             # optional: without phases there is one, "main",
    name = "settle"                        #   lasting workload.duration with [faults]
    duration = 5.0
    heal = true                            # stop every fault as the phase begins
    faults = { ... }                       # this phase's faults, times from its start
    checks = { availability = { min = 0.99 } }   # over the ops invoked in this phase

With ``[[phases]]`` the faults go inside the phases and ``[faults]`` is an
error. A bad file raises :class:`ScenarioError`: the file, the key (for a
mistake of TOML's own, the line: ``faults.syntax`` finds the first line that
defined the key or table given twice), what was found and what was expected,
never a bare traceback.
"""

from __future__ import annotations

import difflib
import inspect
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import emulator as em
from emulator.validate import is_int
from faults.checks import validate_check
from faults.injector import load_primary
from faults.partitions import SHAPES, min_servers
from faults.schedule import RandomNemesis, Schedule, Step
from faults.spec import HOSTILE, ParamError, check_choice, check_count, check_number, check_probability, distribution
from faults.syntax import explain
from faults.workload import Workload
from nodes.registry import resolve

__all__ = ["PRESETS", "Cluster", "Network", "Phase", "Scenario", "ScenarioError", "load_scenario", "refused_at_start"]


class ScenarioError(ParamError):
    """A scenario that cannot run: ``source: key: expected ..., found ...``."""

    def __init__(self, source: str, key: str, found: Any, expected: str):
        super().__init__(key, found, expected)
        self.source = source
        self.args = (f"{source}: {self.args[0]}",)


@dataclass
class Cluster:
    """The servers: a protocol (a registered name, ``"module:Class"`` or a Node class), how many, its config.

    The protocol may instead name a host program, ``"module:function"`` for an
    async function: each server is then a host running ``function(**config)``
    (``sim.add_host``), and the workload's clients are ``faults.httpkv``
    client machines that speak lin-kv over HTTP.
    """

    protocol: Any = "lin-kv"
    nodes: int = 3
    config: dict = field(default_factory=dict)
    primary: str | Callable | None = None

    def _resolved(self) -> Any:
        target = self.protocol
        if isinstance(target, str):
            try:
                target = resolve(target)
            except ValueError as exc:
                raise ParamError(
                    "protocol",
                    self.protocol,
                    f"a registered protocol, 'module:Class' or a host program 'module:function' ({exc})",
                ) from None
        return target

    def program(self) -> Callable | None:
        """The host program if the protocol names an async function, else None."""
        target = self._resolved()
        return target if inspect.iscoroutinefunction(target) else None

    def node_class(self) -> type[em.Node]:
        """The Node class (``nodes.registry.resolve`` for names).

        Raises:
            ParamError: an unknown name, or config the constructor does not take.
        """
        cls = self._resolved()
        if inspect.iscoroutinefunction(cls):
            raise ParamError(
                "protocol",
                self.protocol,
                "a Node subclass here: a host program runs only in a "
                "simulation (sim.add_host), not as a capsim node process",
            )
        if not (isinstance(cls, type) and issubclass(cls, em.Node)):
            raise ParamError("protocol", self.protocol, "a Node subclass or an async function (a host program)")
        check_config(cls, self.config)
        return cls

    def check(self) -> None:
        """Raise ParamError unless the protocol and config can build the servers."""
        program = self.program()
        if program is None:
            self.node_class()
        else:
            check_config(program, self.config)

    @property
    def names(self) -> list[str]:
        return [f"n{i}" for i in range(self.nodes)]

    def build(self, seed: int, network: Network | None = None, keep_trace: bool = False) -> em.Simulation:
        """A Simulation with the servers added (``n0``..), not yet run."""
        program = self.program()
        cls = self.node_class() if program is None else None
        sim = em.Simulation(seed=seed, keep_trace=keep_trace, **(network or Network()).kwargs())
        for name in self.names:  # exactly one of cls and program is set
            if cls is not None:
                sim.add_node(name, cls, **self.config)
            elif program is not None:
                sim.add_host(name, program, **self.config)
        return sim

    def add_clients(self, sim: em.Simulation, workload: Workload) -> list:
        """The workload's clients: capsim clients, or HTTP client machines for a host program."""
        if self.program() is None:
            return workload.add_clients(sim)
        from faults.httpkv import HttpKVClient  # imports aiohttp (12 MB): only runs of host programs pay for it

        return [HttpKVClient(sim, name, port=self.config.get("port", 8080)) for name in workload.client_names()]


def check_config(cls: Callable, config: dict) -> None:
    """Raise ParamError unless ``cls(**config)`` would accept these keyword arguments."""
    if config and isinstance(cls, type) and cls.__init__ is em.Node.__init__:  # type: ignore[misc]  # a class's own __init__, compared, not called
        raise ParamError("config", config, f"no config: {cls.__name__} takes none")
    signature = inspect.signature(cls)
    try:
        signature.bind(**config)
    except TypeError as exc:
        names = ", ".join(signature.parameters) or "none"
        raise ParamError("config", config, f"keyword arguments {cls.__name__} takes: {names} ({exc})") from None


#: Named link defaults: ``network = "hostile"`` in a scenario file, ``Network.preset("hostile")`` in Python.
PRESETS: dict[str, dict] = {"calm": {}, "hostile": HOSTILE}


@dataclass
class Network:
    """The defaults of every link (``fifo``: see ``emulator.network``; links are FIFO unless told otherwise).

    ``Network.preset(name, **overrides)`` starts from a named preset:
    ``"calm"`` (the defaults: 1 ms, nothing lost) or ``"hostile"``
    (:data:`faults.spec.HOSTILE`: loss, duplication, reordering and
    heavy-tailed latency spikes on every link, client links included).
    """

    latency: Any = 0.001
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    fifo: bool = True

    def __post_init__(self):
        self.latency = distribution(self.latency, "latency")
        if not isinstance(self.fifo, bool):
            raise ParamError("fifo", self.fifo, "true (in-order links, the default) or false (independent delays)")
        check_probability("loss", self.loss)
        check_probability("duplicate", self.duplicate)
        if isinstance(self.reorder, bool):
            self.reorder = float(self.reorder)
        check_probability("reorder", self.reorder)

    @classmethod
    def preset(cls, name: str, **overrides) -> Network:
        """The preset ``name`` (one of :data:`PRESETS`) with ``overrides`` applied.

        Raises:
            ParamError: an unknown preset or a bad override.
        """
        check_choice("preset", name, tuple(PRESETS))
        return cls(**{**PRESETS[name], **overrides})

    def kwargs(self) -> dict:
        return {
            "latency": self.latency,
            "loss": self.loss,
            "duplicate": self.duplicate,
            "reorder": self.reorder,
            "fifo": self.fifo,
        }


@dataclass
class Phase:
    """A stretch of the run: its faults (times from its start), a heal at its start, its checks."""

    name: str
    duration: float
    faults: Schedule | RandomNemesis | None = None
    heal: bool = False
    checks: dict = field(default_factory=dict)

    def schedule(self, seed: int, nodes: int) -> Schedule:
        """This phase's steps: the given schedule, or the random nemesis's draw for ``seed``."""
        if isinstance(self.faults, RandomNemesis):
            return self.faults.schedule(seed, nodes, self.duration)
        return self.faults if self.faults is not None else Schedule()


@dataclass
class Scenario:
    """Everything a chaos run needs; ``load_scenario`` reads one from TOML."""

    cluster: Cluster
    workload: Workload
    phases: list[Phase]
    network: Network = field(default_factory=Network)
    checks: dict = field(default_factory=lambda: {"linearizable": validate_check("linearizable", {})})
    name: str = "scenario"
    description: str = ""
    seed: int = 0
    source: str = "<python>"

    @property
    def duration(self) -> float:
        """Seconds of all phases together."""
        return sum(p.duration for p in self.phases)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> Scenario:
        """Build and validate a scenario from parsed TOML (see the module doc)."""
        return _Reader(source).scenario(data)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file.

    Raises:
        ScenarioError: unreadable, not TOML, or not a valid scenario.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark, as some editors save one, is no TOML
    except OSError as exc:
        shipped = (
            f"; for the scenario shipped with capsim of that name, load capsim.examples.scenario_path({str(path)!r})"
            if isinstance(exc, FileNotFoundError) and path.name == str(path) and not path.suffix
            else ""
        )  # a bare name, as `capsim chaos lin-kv-partitions` takes one (capsim sits above faults: named, not imported)
        raise ScenarioError(
            str(path), "file", str(path), f"a readable scenario file ({exc.strerror}){shipped}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            str(path), "file", f"a byte that is not UTF-8 at offset {exc.start}", "a TOML text file"
        ) from None
    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an int of more digits than Python converts
        problem = explain(exc, text)
        key = "file" if problem.line is None else f"line {problem.line}"
        raise ScenarioError(str(path), key, problem.found, problem.expected) from None
    scenario = Scenario.from_dict(data, str(path))
    if "name" not in data:
        scenario.name = path.stem
    return scenario


def refused_at_start(sim: em.Simulation) -> str | None:
    """Run ``sim`` through its first instant and close it; what a node refused as it started, or None.

    ``"n0 refused it as it started: ConfigError: ..."``: settings a protocol checks in ``on_start`` (it knows its
    peers there), which a command reports before its run rather than as node errors of every run.
    """
    with sim:  # closed: every task it started ends here
        sim.run(until=0.0)
    refused = next((e for e in sim.errors if e.where == "on_start"), None)
    if refused is None:
        return None
    return f"{refused.node} refused it as it started: {type(refused.exception).__name__}: {refused.exception}"


def toml_problem(exc: ValueError, text: str = "") -> str:
    """What ``tomllib.loads(text)`` found wrong, in words for the file's author (``faults.syntax.explain``)."""
    problem = explain(exc, text)
    if problem.line is None:
        return problem.found
    return f"line {problem.line}: expected {problem.expected}, found {problem.found!r}"


def _names(nodes: int) -> list[str]:
    return Cluster(nodes=nodes).names


_MISSING = object()
#: The most servers a scenario may name: far more than fit in memory (``capsim.limits`` tells how many do).
MAX_NODES = 100_000
_TOP = ("name", "description", "seed", "cluster", "network", "workload", "checks", "faults", "phases")


def _hint(key: str, where: str, known: tuple) -> str:
    """Why an unknown key may be there: a top-level key written under a table, or a near miss of a known one."""
    if where and key in _TOP:
        header = "[[phases]]" if where.startswith("phases[") else f"[{where}]"
        return (
            f" ({key} is a top-level key: TOML puts every key after a {header} header in that table, "
            "so write it above the first [table])"
        )
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


class _Reader:
    """Reads one scenario, turning every problem into a ScenarioError with its key."""

    def __init__(self, source: str):
        self.source = source
        self.cluster = Cluster()  # the file's, once read: steps are checked against it
        self.servers: list[str] = []  # the cluster's, once read: steps that name a node are checked against them
        self.clients: list[str] = []  # the workload's, once read: link faults may name them

    def fail(self, key: str, found: Any, expected: str) -> NoReturn:
        raise ScenarioError(self.source, key, found, expected)

    def table(self, data: Any, where: str, known: tuple) -> dict:
        if not isinstance(data, dict):
            self.fail(where or "file", data, "a table")
        for key, value in data.items():
            if key not in known:
                self.fail(
                    f"{where}.{key}" if where else key,
                    value,
                    "one of the keys " + ", ".join(known) + _hint(key, where, known),
                )
        return data

    def wrap(self, where: str, make: Callable, *args, **kwargs):
        """``make(...)``, with a ParamError's key put under ``where``."""
        try:
            return make(*args, **kwargs)
        except ScenarioError:
            raise
        except ParamError as exc:
            self.fail(f"{where}.{exc.key}" if where else exc.key, exc.found, exc.expected)

    def scenario(self, data: dict) -> Scenario:
        self.table(data, "", _TOP)
        if "cluster" not in data:
            self.fail("cluster", None, "a [cluster] table with protocol and nodes")
        name = data.get("name", "scenario")
        if not isinstance(name, str) or not isinstance(data.get("description", ""), str):
            self.fail("name", name, "a string")
        seed = data.get("seed", 0)
        if not is_int(seed) or seed < 0:
            self.fail("seed", seed, "a whole number >= 0 (as --seed takes)")
        self.cluster = cluster = self.read_cluster(data["cluster"])
        self.servers = cluster.names
        network = self.network(data.get("network", {}))
        workload = self.workload(data.get("workload", {}))
        self.clients = workload.client_names()
        phases = self.phases(data, workload)
        if workload.duration is None:
            workload.duration = sum(p.duration for p in phases)
        checks = self.checks(data.get("checks", ["linearizable"]), "checks", phase=False)
        # An exception in protocol code (or a config it refuses when it starts) always fails a run.
        checks.setdefault("node-errors", validate_check("node-errors", {}))
        return Scenario(
            cluster, workload, phases, network, checks, name, data.get("description", ""), seed, self.source
        )

    def read_cluster(self, data: Any) -> Cluster:
        self.table(data, "cluster", ("protocol", "nodes", "config", "primary"))
        protocol = data.get("protocol", _MISSING)
        if not isinstance(protocol, str) or not protocol:
            self.fail(
                "cluster.protocol",
                None if protocol is _MISSING else protocol,
                "a registered protocol name such as 'lin-kv', or 'package.module:Class'",
            )
        # The memory check (capsim.limits) says how many fit on this machine; this bound keeps a typo's
        # billion from being built (as a list of names) before it can.
        nodes = self.wrap("cluster", check_count, "nodes", data.get("nodes", 3), 1, MAX_NODES)
        config = data.get("config", {})
        if not isinstance(config, dict):
            self.fail("cluster.config", config, "a table of keyword arguments for the protocol")
        primary = data.get("primary")
        if primary is not None and (
            not isinstance(primary, str) or not primary or (":" not in primary and primary not in _names(nodes))
        ):
            self.fail(
                "cluster.primary",
                primary,
                f"the name of a server ({', '.join(_names(nodes))}) or a 'module:function' path",
            )
        if isinstance(primary, str) and ":" in primary:
            self.wrap("cluster", load_primary, primary)  # now, not when a fault first asks who leads
        cluster = Cluster(protocol, nodes, dict(config), primary)
        self.wrap("cluster", cluster.check)
        return cluster

    def network(self, data: Any) -> Network:
        if isinstance(data, str):
            data = {"preset": data}
        options = dict(self.table(data, "network", ("preset", "latency", "loss", "duplicate", "reorder", "fifo")))
        preset = options.pop("preset", "calm")
        if not isinstance(preset, str) or preset not in PRESETS:
            self.fail("network.preset", preset, "a preset name: " + ", ".join(PRESETS))
        return self.wrap("network", Network.preset, preset, **options)

    def workload(self, data: Any) -> Workload:
        known = (
            "clients",
            "rate",
            "keys",
            "distribution",
            "hot",
            "mix",
            "timeout",
            "duration",
            "routing",
            "unique",
            "single_writer",
            "final_reads",
        )
        return self.wrap("workload", Workload, **self.table(data, "workload", known))

    def phases(self, data: dict, workload: Workload) -> list[Phase]:
        if "phases" not in data:
            if workload.duration is None:
                self.fail("workload.duration", None, "seconds of traffic (or [[phases]] with durations)")
            if workload.duration == 0:  # no traffic, and so no fault: every check would pass on an empty history
                self.fail("workload.duration", workload.duration, "seconds of traffic > 0")
            faults = self.faults(data["faults"], "faults", workload.duration) if "faults" in data else None
            phases = [Phase("main", workload.duration, faults)]
            self.steps_end_in_time(phases, "faults")
            return phases
        if "faults" in data:
            self.fail("faults", data["faults"], "faults inside each [[phases]] table when there are phases")
        raw = data["phases"]
        if not isinstance(raw, list) or not raw:
            self.fail("phases", raw, "one or more [[phases]] tables")
        phases = [self.phase(p, f"phases[{i}]") for i, p in enumerate(raw)]
        for i, phase in enumerate(phases):
            if any(other.name == phase.name for other in phases[:i]):
                self.fail(f"phases[{i}].name", phase.name, "a name no other phase has (checks are reported by it)")
        self.steps_end_in_time(phases, "phases[{}].faults")
        return phases

    def steps_end_in_time(self, phases: list[Phase], where: str) -> None:
        """Fail if a scripted step lasts longer than the whole scenario (a unit slip: 1e12 ran 1e12 virtual s).

        A step may outlast its phase, and the scenario's traffic: the run goes on to stop it.
        """
        total = sum(p.duration for p in phases)
        for i, phase in enumerate(phases):
            if isinstance(phase.faults, Schedule):
                for j, step in enumerate(phase.faults.steps):
                    if step.duration is not None and step.duration > total:
                        self.fail(
                            f"{where.format(i)}.steps[{j}].duration",
                            step.duration,
                            f"seconds no longer than the whole scenario ({total:g} s)",
                        )

    def phase(self, data: Any, where: str) -> Phase:
        self.table(data, where, ("name", "duration", "heal", "faults", "checks"))
        name = data.get("name", where)
        if not isinstance(name, str) or not name:
            self.fail(f"{where}.name", name, "a non-empty string")
        duration = self.wrap(where, check_number, "duration", data.get("duration"), low=0.0, strict_low=True)
        heal = data.get("heal", False)
        if not isinstance(heal, bool):
            self.fail(f"{where}.heal", heal, "true or false")
        faults = self.faults(data["faults"], f"{where}.faults", duration) if "faults" in data else None
        checks = self.checks(data.get("checks", {}), f"{where}.checks", phase=True)
        return Phase(name, duration, faults, heal, checks)

    def faults(self, data: Any, where: str, duration: float) -> Schedule | RandomNemesis:
        if isinstance(data, dict) and "steps" in data:
            others = [key for key in data if key != "steps"]
            if others:  # [[faults.steps]] and a random nemesis's kinds = [...] under the same [faults]
                self.fail(
                    f"{where}.{others[0]}",
                    data[others[0]],
                    "either a random nemesis (kinds, interval, duration, ...) or scripted [[...steps]], not both; "
                    "for both, use [[phases]], each with its own faults",
                )
            schedule = self.wrap(where, Schedule.from_dict, data)
            for i, step in enumerate(schedule.steps):
                if step.at > duration:
                    self.fail(f"{where}.steps[{i}].at", step.at, f"a time within the phase (0 to {duration:g} s)")
                self.step_names(step.params, f"{where}.steps[{i}]")
                self.step_fits(step, f"{where}.steps[{i}]")
            return schedule
        known = ("kinds", "interval", "duration", "shapes", "heal", "steps")
        options = self.table(data, where, known)
        if "kinds" not in options:
            self.fail(f"{where}.kinds", None, "the fault kinds of a random nemesis, or [[...steps]]")
        if "duration" in options:
            options = {
                **options,
                "duration": tuple(options["duration"])
                if isinstance(options["duration"], list)
                else options["duration"],
            }
        nemesis = self.wrap(where, RandomNemesis, **options)
        self.random_fits(nemesis, where)
        return nemesis

    def step_names(self, params: dict, where: str) -> None:
        """Fail unless every server a step names is one of the cluster's, and its count no more than they are.

        Names are in nodes, groups, primary or node; count asks for that many servers.

        Run now, as the file is read: the injector would find it only when the step fires, mid-run,
        and its message could not say which file and step.
        """
        for key in ("nodes", "groups", "primary", "node"):
            value = params.get(key)
            if key == "groups" and isinstance(value, list):
                named = [n for group in value if isinstance(group, list) for n in group]
            elif key == "nodes" and isinstance(value, list):
                named = list(value)
            elif key in ("primary", "node") and isinstance(value, str) and ":" not in value:
                named = [value]
            else:
                continue  # absent, or a shape the nemesis has refused already
            unknown = [n for n in named if n not in self.servers]
            if unknown:
                self.fail(
                    f"{where}.{key}", value, f"server names from {', '.join(self.servers)} ({unknown[0]} is not one)"
                )
        count = params.get("count")
        if isinstance(count, int) and count > len(self.servers):  # the nemesis took it for all of them
            self.fail(f"{where}.count", count, f"at most {len(self.servers)}, the cluster's servers")

    def step_fits(self, step: Step, where: str) -> None:
        """Fail unless the step can fire on this cluster: its shape fits, its primary, views and links exist.

        Run as the file is read, as :meth:`step_names` is, for the same reason.
        """
        if step.kind == "heal":
            return
        params = step.nemesis().params  # validated, defaults filled in
        if step.kind == "partition":
            shape = params["shape"]
            self.shape_fits(shape, f"{where}.shape", shape, params["primary"] is not None)
        elif params.get("target") == "primary":
            self.primary_known(f"{where}.target", "primary")
        elif step.kind == "membership":
            self.has_views(f"{where}.kind")
        links = params.get("links")
        if isinstance(links, list):
            known = [*self.servers, *self.clients]
            unknown = [n for pair in links for n in pair if n not in known]
            if unknown:
                self.fail(
                    f"{where}.links",
                    step.params["links"],
                    f"pairs of node names from {', '.join(known)} ({unknown[0]} is not one)",
                )

    def random_fits(self, nemesis: RandomNemesis, where: str) -> None:
        """Fail unless every kind of a random nemesis can strike this cluster (it would skip it in silence)."""
        if "partition" in nemesis.weights:
            shapes = list(nemesis.shapes)
            fitting = [s for s in shapes if min_servers(s) <= len(self.servers)]
            if not fitting:
                fits = [s for s in SHAPES if s != "groups" and min_servers(s) <= len(self.servers)]
                self.fail(
                    f"{where}.shapes",
                    shapes,
                    f"a shape that fits the cluster's {len(self.servers)} server(s)"
                    + (
                        f" ({', '.join(fits)} need {min_servers(fits[0])})"
                        if fits
                        else "; or drop partition from kinds"
                    ),
                )
            if "isolate-primary" in fitting:
                self.primary_known(f"{where}.shapes", shapes)
        if "membership" in nemesis.weights:
            self.has_views(f"{where}.kinds", "membership")

    def shape_fits(self, shape: str, key: str, found: Any, primary_given: bool) -> None:
        if len(self.servers) < min_servers(shape):
            self.fail(
                key,
                found,
                f"a shape that fits the cluster's {len(self.servers)} server(s); {shape} needs at least "
                f"{min_servers(shape)}",
            )
        if shape == "isolate-primary" and not primary_given:
            self.primary_known(key, found)

    def primary_known(self, key: str, found: Any) -> None:
        """Fail unless the injector can find the primary: cluster.primary, or the protocol's ``leader_of``."""
        if self.cluster.primary is not None:
            return
        program = self.cluster.program()
        cls = None if program is not None else self.cluster.node_class()
        if cls is not None and callable(getattr(cls, "leader_of", None)):
            return
        name = cls.__name__ if cls is not None else "a host program"
        self.fail(
            key,
            found,
            f"a primary to aim at: {name} has no leader_of, so set cluster.primary "
            "(a server's name or a 'module:function' returning one)",
        )

    def has_views(self, key: str, found: Any = "membership") -> None:
        """Fail unless the servers answer ``view()``, as the membership nemesis needs."""
        program = self.cluster.program()
        cls = None if program is not None else self.cluster.node_class()
        if cls is None or not callable(getattr(cls, "view", None)):
            name = cls.__name__ if cls is not None else "a host program"
            self.fail(key, found, f"a protocol whose nodes have view() (sharded-kv) for membership; {name} has none")

    def checks(self, data: Any, where: str, phase: bool) -> dict:
        if isinstance(data, list):
            if not all(isinstance(name, str) for name in data):
                self.fail(where, data, "a list of check names")
            data = {name: True for name in data}
        if not isinstance(data, dict):
            self.fail(where, data, "a list of check names or a table of checks")
        return {name: self.wrap(where, validate_check, name, params, phase) for name, params in data.items()}
