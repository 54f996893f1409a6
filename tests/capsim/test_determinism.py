"""The same command prints the same thing in any process: capsim cap, pacelc and demo.

Each runs in fresh interpreters under different ``PYTHONHASHSEED`` values,
with the compiled core and with ``CAPSIM_PURE_PYTHON=1``; the chaos
command's runs are checked the same way in tests/faults/test_chaos.py.
"""

import os
import subprocess
import sys

import pytest

COMMANDS = {
    "cap": ["cap", "--json", "--config", "cp,ap,async", "--duration", "6", "--partition-at", "2", "--heal-at", "4"],
    "pacelc": [
        "pacelc",
        "--json",
        "--trials",
        "60",
        "--model-trials",
        "2000",
        "--quorums",
        "3/1/1,3/2/2",
        "--jobs",
        "1",
    ],
    "demo-partition": ["demo", "partition"],
    "demo-queue": ["demo", "queue"],
}
PROCESSES = [("0", ""), ("1", "1"), ("3141592653", "")]  # (PYTHONHASHSEED, CAPSIM_PURE_PYTHON)


def _output(argv, hash_seed, pure):
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, CAPSIM_PURE_PYTHON=pure, COLUMNS="120")
    out = subprocess.run(
        [sys.executable, "-m", "capsim", *argv], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return out.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_same_seed_prints_the_same_output_in_any_process(name):
    """Three processes (hash seeds 0, 1 and another; pure Python in one) print the same, byte for byte."""
    outputs = [_output(COMMANDS[name], hash_seed, pure) for hash_seed, pure in PROCESSES]
    assert outputs[0].strip(), "the command printed nothing"
    assert outputs[0] == outputs[1] == outputs[2]
