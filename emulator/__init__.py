"""capsim's kernel: virtual-time asyncio, a simulated network, nodes, clients, histories.

    import emulator as em

    class Echo(em.Node):
        async def handle_echo(self, msg):
            return {"type": "echo_ok", "echo": msg.body["echo"]}

    sim = em.Simulation(seed=7, latency=em.Uniform(0.001, 0.003))
    for i in range(3):
        sim.add_node(f"n{i}", Echo)
    client = sim.add_client("c0")

    async def workload():
        reply = await client.rpc("n1", {"type": "echo", "echo": 1}, timeout=1.0)
        return reply["echo"]

    assert sim.run(workload()) == 1

The project README has a tour of the kernel (nodes, faults, running,
determinism, histories); help(emulator.Simulation) and help(emulator.Node)
document the API, and emulator.check the checkers.
"""

from emulator.client import Client
from emulator.distributions import Constant, Distribution, Exponential, LogNormal, Pareto, Uniform
from emulator.distributions import parse as parse_distribution
from emulator.errors import (
    ConfigError,
    Deadlock,
    EmulatorError,
    MessageError,
    NotAllowed,
    RPCError,
    Timeout,
    Unfinished,
)
from emulator.history import History
from emulator.loop import VirtualLoop
from emulator.message import Message
from emulator.network import Link, Network
from emulator.node import Endpoint, Node, Storage
from emulator.peers import Peers
from emulator.simulation import NodeError, Simulation
from emulator.trace import Trace

__all__ = [
    "Client",
    "ConfigError",
    "Constant",
    "Deadlock",
    "Distribution",
    "EmulatorError",
    "Endpoint",
    "Exponential",
    "History",
    "Link",
    "LogNormal",
    "Message",
    "MessageError",
    "Network",
    "Node",
    "NodeError",
    "NotAllowed",
    "Pareto",
    "Peers",
    "RPCError",
    "Simulation",
    "Storage",
    "Timeout",
    "Trace",
    "Unfinished",
    "Uniform",
    "VirtualLoop",
    "parse_distribution",
]
