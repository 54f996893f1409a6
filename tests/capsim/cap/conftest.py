"""Fixtures of the CAP and PACELC tests: one partial quorum measured by the shared sweep."""

import pytest

from capsim.cap.pacelc import measure_quorum
from tests.common.pacelc_sweep import SWEEP


@pytest.fixture(scope="package")
def partial():
    """N=3, R=1, W=1 measured by SWEEP (a few seconds: shared by the sweep's and the report's tests)."""
    return measure_quorum(SWEEP, 3, 1, 1)
