"""Fixtures for the checker tests: shared histories, a history builder, a brute-force checker, generators.

Helpers are handed out as session-scoped fixtures (test files never import
each other, and hypothesis accepts session fixtures in ``@given`` tests); the
helpers themselves live in tests/common/check_histories.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.common.check_histories import (
    KNOSSOS_DIR,
    KV_DIR,
    KV_VERDICTS,
    HistoryBuilder,
    brute_force,
    busy_history,
    longest_prefix,
    order_problem,
    search_reference,
    simulated_history,
    small_history,
)


@pytest.fixture(scope="session")
def history() -> Callable[[], HistoryBuilder]:
    """A factory of empty :class:`HistoryBuilder` objects."""
    return HistoryBuilder


@pytest.fixture(scope="session")
def brute() -> Callable[[list[dict], str], bool]:
    """The brute-force reference checker."""
    return brute_force


@pytest.fixture(scope="session")
def small_histories() -> Callable:
    """``small_histories(choose, model)``: random small histories for comparisons."""
    return small_history


@pytest.fixture(scope="session")
def busy_histories() -> Callable:
    """``busy_histories(choose, model, max_ops)``: random histories of up to 6 processes, often timing out."""
    return busy_history


@pytest.fixture(scope="session")
def reference() -> SimpleNamespace:
    """The exhaustive reference: ``.valid(h, model)``, ``.longest(h, model)``, ``.problem(h, model, calls, done)``."""
    return SimpleNamespace(valid=search_reference, longest=longest_prefix, problem=order_problem)


@pytest.fixture(scope="session")
def simulated() -> Callable:
    """``simulated(rng, model, n_ops, processes)``: linearizable-by-construction histories."""
    return simulated_history


@pytest.fixture(scope="session")
def kv_histories() -> dict[str, tuple[Path, bool]]:
    """The shared Porcupine kv histories: name -> (path, linearizable?)."""
    if not KV_DIR.is_dir():
        pytest.skip(f"shared kv histories not found at {KV_DIR} (they live in ../shared/data beside the repo)")
    return {name: (KV_DIR / f"{name}.edn", valid) for name, valid in KV_VERDICTS.items()}


@pytest.fixture(scope="session")
def knossos_files() -> list[tuple[Path, bool]]:
    """The shared Knossos cas-register sample: (path, linearizable?) from its good/ or bad/ folder."""
    if not KNOSSOS_DIR.is_dir():
        pytest.skip(f"shared Knossos histories not found at {KNOSSOS_DIR} (set CAPSIM_SHARED)")
    return [(path, path.parent.name == "good") for path in sorted(KNOSSOS_DIR.glob("*/*.edn"))]
