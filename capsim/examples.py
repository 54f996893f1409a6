"""The example scenarios shipped inside the package (``capsim/scenarios/*.toml``).

``capsim chaos lin-kv-partitions`` runs one by name, from anywhere, after a
plain ``pip install .``; in a clone, ``scenarios/`` beside the README is the
same directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["scenario_names", "scenario_path"]


def _directory() -> Path:
    return Path(str(resources.files("capsim") / "scenarios"))


def scenario_names() -> list[str]:
    """The names of the shipped scenarios, sorted (``lin-kv-partitions``, ...)."""
    return sorted(path.stem for path in _directory().glob("*.toml"))


def scenario_path(text: str) -> Path | None:
    """The file ``text`` names: itself if it exists, else the shipped scenario of that name, else None."""
    given = Path(text)
    if given.exists():
        return given
    if given.name == text:  # a bare name, not a path to somewhere else
        shipped = _directory() / (text if text.endswith(".toml") else f"{text}.toml")
        if shipped.is_file():
            return shipped
    return None
