"""Fixtures for the real transport's tests: a three-node in-process cluster of relays, one host, a session."""

import aiohttp
import pytest_asyncio

from emulator.transport import NodeHost, RealCluster
from tests.common.transport_http import TOKEN
from tests.common.transport_nodes import Relay

NAMES = ["n0", "n1", "n2"]


@pytest_asyncio.fixture
async def cluster():
    """n0, n1, n2 running ``Relay`` on loopback, seed 3; closed after the test."""
    real = await RealCluster.local({name: Relay for name in NAMES}, seed=3)
    yield real
    await real.close()


@pytest_asyncio.fixture
async def host():
    """n1 running ``Relay`` on loopback, control token TOKEN, 64 KiB body limit; stopped after the test."""
    node = await NodeHost("n1", Relay, token=TOKEN, max_body=64 * 1024).start()
    yield node
    await node.stop()


@pytest_asyncio.fixture
async def http():
    """An aiohttp client session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session
