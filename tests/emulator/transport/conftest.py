"""Fixtures for the real transport's tests: a three-node in-process cluster of relays."""

import pytest_asyncio

from emulator.transport import RealCluster
from tests.common.transport_nodes import Relay

NAMES = ["n0", "n1", "n2"]


@pytest_asyncio.fixture
async def cluster():
    """n0, n1, n2 running ``Relay`` on loopback, seed 3; closed after the test."""
    real = await RealCluster.local({name: Relay for name in NAMES}, seed=3)
    yield real
    await real.close()
