"""scripts/bench_cache.py: cachegrind's summary is read right, and (with valgrind) a small ring gives figures."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_cache

SUMMARY = """==1== I   refs:      4,841,690,526
==1== LL refs:         189,682,699  (   185,210,698 rd   +   4,472,001 wr)
==1== LL misses:        22,930,232  (   21,150,007 rd   +   1,780,225 wr)
==1== LL miss rate:            0.3% (          0.3%     +         0.2%  )
"""


def test_the_last_level_misses_are_read_from_the_summary_reads_and_writes_together():
    assert bench_cache.ll_misses(SUMMARY) == 22_930_232


def test_a_summary_without_the_misses_line_is_an_error_that_shows_the_output():
    with pytest.raises(ValueError, match=r"(?s)no 'LL misses:' line.*I   refs"):
        bench_cache.ll_misses(SUMMARY.splitlines()[0])


@pytest.mark.slow
@pytest.mark.skipif(bench_cache.VALGRIND is None, reason="needs valgrind")
def test_a_ring_that_fits_the_simulated_last_level_misses_far_less_than_one_that_does_not():
    """2,000 nodes (a working set of a few MB): tens of misses a message in 1 MB, about none in 16 MB."""
    small = bench_cache.misses_per_message(2000, 1 << 20, 0.2, 0.4)
    large = bench_cache.misses_per_message(2000, 16 << 20, 0.2, 0.4)
    assert small > 10 and large < 2, (small, large)
