"""scripts/bench_hosts.py: all three sides really run the aiohttp pair to the end."""

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_hosts


def test_every_side_answers_every_request_and_the_ratios_are_theirs():
    """Each side checks it got every answer in order; the row's ratios are of its own figures."""
    row = bench_hosts.bench_hosts(20, repeats=1)
    assert row["requests"] == 20
    assert row["loopback_over_simulated"] == row["loopback_s_per_request"] / row["simulated_s_per_request"]
    assert row["simulated_over_floor"] == row["simulated_s_per_request"] / row["floor_s_per_request"]
    assert row["loopback_over_floor"] == row["loopback_s_per_request"] / row["floor_s_per_request"]


def test_the_floor_opens_no_socket_and_answers_in_order():
    """The in-memory loop carries aiohttp's bytes without a socket: a server made on it binds nothing."""

    async def main():
        server = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 1)
        assert server.sockets == ()  # nothing was bound
        answers: list = []
        await bench_hosts._over_memory(3, answers)
        return answers

    with asyncio.Runner(loop_factory=bench_hosts._MemoryLoop) as runner:
        assert runner.run(main()) == ["0", "1", "2"]


def test_a_server_that_fails_to_start_is_an_error_not_a_hang():
    """A server that dies before it listens is reported, rather than the benchmark waiting forever."""

    async def broken(port, ready):
        raise OSError("no such port")

    with asyncio.Runner(loop_factory=bench_hosts._MemoryLoop) as runner, pytest.raises(OSError, match="no such"):
        runner.run(bench_hosts._over_memory(1, [], broken))
