"""The real transport: the same Node classes, as real processes talking JSON over HTTP.

    >>> from emulator.transport import RealCluster
    >>> from nodes.kv import SingleKV        # user code may use the protocol library; emulator does not
    >>> cluster = await RealCluster.local({"n1": SingleKV, "n2": SingleKV, "n3": SingleKV})
    >>> client = await cluster.add_client("c0")
    >>> await client.invoke("write", key="x", value=1)
    >>> cut = await cluster.network.partition(["n1"], ["n2", "n3"])   # through each node's control endpoint
    >>> await cluster.network.heal(cut)                                # that cut only, as in the simulation
    >>> await cluster.close()

One aiohttp server per node (``NodeHost``): ``POST /msg`` takes Maelstrom
envelopes ``{"src", "dest", "body"}``; replies travel back as their own
POSTs, so ``rpc`` timeouts and errors behave exactly as in the simulation.
Node code talks to an ``emulator.Endpoint`` whose transport is an
``HttpTransport`` instead of the simulated ``Network``, and cannot tell.
Nodes that share the cluster secret sign the messages they send; a node
refuses a message that claims a server's name without that signature
(``emulator.transport.auth``).

This package is the one place in ``emulator`` that uses real time and
entropy: runs here are not replayable, and say so.
"""

from emulator.transport.cluster import RealCluster
from emulator.transport.control import CONTROL_ACTIONS, ControlClient, ControlQueue
from emulator.transport.diag import Echo
from emulator.transport.errors import ControlError, LaunchError, TransportError, WireError
from emulator.transport.host import NodeHost
from emulator.transport.http import HttpTransport
from emulator.transport.links import LinkFaults
from emulator.transport.network import CutId, RealNetwork
from emulator.transport.plane import ControlPlane
from emulator.transport.processes import ClusterState, NodeProcess, free_ports, launch, stop
from emulator.transport.storage import FileStorage, WallClock
from emulator.transport.wire import MAX_BODY, encode_envelopes, parse_envelopes

__all__ = [
    "CONTROL_ACTIONS",
    "MAX_BODY",
    "ClusterState",
    "ControlClient",
    "ControlError",
    "ControlPlane",
    "ControlQueue",
    "CutId",
    "Echo",
    "FileStorage",
    "HttpTransport",
    "LaunchError",
    "LinkFaults",
    "NodeHost",
    "NodeProcess",
    "RealCluster",
    "RealNetwork",
    "TransportError",
    "WallClock",
    "WireError",
    "encode_envelopes",
    "free_ports",
    "launch",
    "parse_envelopes",
    "stop",
]
