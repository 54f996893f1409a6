"""Fixtures of the report tests: runs of the partition demo to tabulate, plot and render."""

import pytest

from capsim.demos import partition
from capsim.report import Run, Window


@pytest.fixture(scope="package")
def runs():
    """Two runs of the partition demo (seeds 1 and 2), with sides, the partition window and stale reads."""
    out = []
    for seed in (1, 2):
        sim, clients = partition.build(seed)
        sim.run(partition.scenario(sim, clients))
        faults = {op["f"]: op["time"] for op in sim.history.nemesis_ops()}
        ok = sum(op["type"] == "ok" for op in sim.history)
        done = sum(op["type"] != "invoke" for op in sim.history.client_ops())
        out.append(
            Run(
                f"seed {seed}",
                list(sim.history),
                {"availability": ok / done, "ops": done},
                sides={"minority": ["bob"], "majority": ["alice"]},
                windows=[Window(faults["partition"], faults["heal"], "partition")],
                stale=[0.5, 1.2],
            )
        )
    return out
