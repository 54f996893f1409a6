"""Shared fixtures for capsim's own tests.

The sim / sim_seed fixtures come from capsim's pytest plugin
(emulator.pytest_plugin), as they do for users. Helpers shared between test
modules live in tests/common (never import one test file from another).
"""

pytest_plugins = ["pytester"]
