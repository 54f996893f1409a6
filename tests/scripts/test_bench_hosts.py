"""scripts/bench_hosts.py: both sides really run the aiohttp pair to the end."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_hosts


def test_both_sides_answer_every_request_and_the_ratio_is_theirs():
    """Each side checks it got every answer in order; the row's ratio is loopback over simulated."""
    row = bench_hosts.bench_hosts(20, repeats=1)
    assert row["requests"] == 20
    assert row["loopback_over_simulated"] == row["loopback_s_per_request"] / row["simulated_s_per_request"]
