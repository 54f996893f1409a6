"""``Node.peers``: the other server nodes, as a read-only view of one shared list.

Every node of a cluster sees the same sorted tuple of server names, less
itself. A copy per node would cost memory quadratic in the cluster's size
(10,000 nodes: 10**8 references); a view costs a few words per node and
answers ``len``, indexing, slicing, iteration, ``in`` and ``index`` as the list
would, in the same order, so ``rng.choice(self.peers)`` draws the same peer it
drew from a list. It compares equal to a list or tuple with the same names,
and ``list(self.peers)`` gives a list to change.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import overload

__all__ = ["Peers"]


class Peers(Sequence[str]):
    """The names in ``servers`` (sorted) except ``name``.

    Args:
        servers: every server's name, sorted; shared, never changed.
        name: the node whose peers these are (absent from ``servers`` for a client).
    """

    __slots__ = ("_servers", "_skip")

    def __init__(self, servers: tuple[str, ...], name: str):
        self._servers = servers
        at = bisect_left(servers, name)
        self._skip = at if at < len(servers) and servers[at] == name else len(servers)

    @property
    def servers(self) -> tuple[str, ...]:
        """Every server's name, this node's included: the shared tuple."""
        return self._servers

    def __len__(self) -> int:
        return len(self._servers) - (self._skip < len(self._servers))

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("peers index out of range")
        return self._servers[index + (index >= self._skip)]

    def __iter__(self) -> Iterator[str]:
        servers, skip = self._servers, self._skip
        return chain(islice(servers, skip), islice(servers, skip + 1, None))

    def __contains__(self, name: object) -> bool:
        servers = self._servers
        at = bisect_left(servers, name) if isinstance(name, str) else len(servers)
        return at != self._skip and at < len(servers) and servers[at] == name

    def index(self, name: object, start: int = 0, stop: int | None = None) -> int:
        """Position of ``name`` (ValueError if it is not a peer)."""
        if not isinstance(name, str) or name not in self:
            raise ValueError(f"{name!r} is not a peer")
        at = bisect_left(self._servers, name)
        at -= at > self._skip
        if not start <= at < (len(self) if stop is None else stop):
            raise ValueError(f"{name!r} is not in that part of the peers")
        return at

    def count(self, name: object) -> int:
        return 1 if name in self else 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Peers):
            return list(self) == list(other)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compares equal to lists, which do not hash

    def __add__(self, other: Iterable[str]) -> list[str]:
        return [*self, *other]

    def __radd__(self, other: Iterable[str]) -> list[str]:
        return [*other, *self]

    def __repr__(self) -> str:
        return repr(list(self))
