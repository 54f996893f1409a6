"""Named random streams derived from one root seed.

Every random choice in a simulation draws from a ``random.Random`` stream
named for its purpose (``"net:n1->n2"``, ``"node:n3"``). A stream's seed is a
hash of the root seed and its name, so adding a node or a link creates new
streams without perturbing the draws of the existing ones, and a run is the
same in any process whatever ``PYTHONHASHSEED`` is.
"""

from __future__ import annotations

import hashlib
import random

from emulator.validate import is_int

__all__ = ["Streams", "derive_seed"]


def derive_seed(root: int, name: str) -> int:
    """A 64-bit seed for stream ``name`` under ``root``, stable across processes."""
    digest = hashlib.sha256(f"{root}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Streams:
    """A lazily-filled registry of named ``random.Random`` streams.

    Args:
        seed: the root seed of the run; any int.
    """

    def __init__(self, seed: int):
        if not is_int(seed):
            from emulator.errors import ConfigError

            raise ConfigError(f"seed must be an int, got {seed!r}; pass e.g. seed=42")
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def __call__(self, name: str) -> random.Random:
        """The stream called ``name``, created on first use."""
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = random.Random(derive_seed(self.seed, name))
        return stream
