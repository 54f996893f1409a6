"""Shared fixtures for capsim's own tests.

The sim / sim_seed fixtures come from capsim's pytest plugin
(emulator.pytest_plugin), as they do for users. Helpers shared between test
modules live in tests/common (never import one test file from another).

Hypothesis profiles: "dev" (default) explores freshly each run; "ci"
(HYPOTHESIS_PROFILE=ci, set by .ci/run) is derandomized so CI is repeatable.
Both skip the explain phase, which traces every line and makes simulations
about ten times slower while shrinking.
"""

import os

from hypothesis import HealthCheck, Phase, settings

_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
settings.register_profile("dev", phases=_PHASES, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

pytest_plugins = ["pytester"]
