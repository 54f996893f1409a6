"""The sending half of the real transport: a node's messages as HTTP POSTs.

``HttpTransport.transmit`` is the whole seam the node runtime sees (the
``Transport`` protocol of ``emulator.node``): it never blocks and never
fails for network reasons. Each destination has an outbox drained by one
task that POSTs whatever has queued up as one batch and waits for the
``202`` before the next, so messages on one link arrive in order (FIFO, as
the simulated network's default) and a busy link costs one request per
round trip, not one per message.

Faults from ``LinkFaults`` apply here: a cut drops at send time and again
when the message leaves the outbox; loss and duplicates are drawn from the
host's rng; extra latency holds a message in the outbox until it is due.

A message is sent only once its node's storage holds every change made
before it (``before_send``, ``FileStorage.sync``); if that cannot be saved,
the message is dropped as ``unsaved`` rather than acknowledge a change that
is not on disk.

As on the simulated network, an undeliverable message is dropped and
counted, never raised: a peer that is down, refuses the batch or does not
answer within ``timeout`` looks like a lossy link, and the rpc waiting for a
reply times out. Counters are the sender's view: a batch whose request
timed out may still have arrived.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable

import aiohttp

from emulator.node import Endpoint
from emulator.transport.auth import SIGNATURE_HEADER, sign
from emulator.transport.links import LinkFaults, Settings
from emulator.transport.wire import MAX_BATCH, MAX_BODY, JsonObject, encode_envelopes
from emulator.validate import unknown_node

__all__ = ["REPLY_TO_HEADER", "HttpTransport"]

#: Header naming the sender's base URL, so a node can answer senders it has no route to (clients).
REPLY_TO_HEADER = "X-Capsim-Reply-To"

_log = logging.getLogger("capsim.transport")


class _Outbox:
    """Messages waiting for one destination, ordered by when they are due."""

    __slots__ = ("blocked", "dest", "failing", "heap", "last_due", "settings", "task", "url", "version", "wake")

    def __init__(self, dest: str, url: str):
        self.dest = dest
        self.url = url
        self.heap: list[tuple[float, int, JsonObject]] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_due = 0.0
        self.version = -1
        self.blocked = False
        self.settings = Settings()  # read only after a refresh (version -1 forces one)
        self.failing = False  # the last request failed: log the next failure quietly


class HttpTransport:
    """Carries one host's outgoing messages to its peers over HTTP.

    Args:
        name: the sending node's name.
        routes: node name -> base URL (``http://127.0.0.1:9001``), this node included.
        faults: the cluster's fault state, shared with the host.
        rng: draws loss, duplicates and latency.
        timeout: seconds to wait for a peer to accept a batch before dropping it.
        max_queue: messages an outbox may hold; more are dropped as ``overflow``.
        max_body: the largest request peers accept; bigger batches are split, and
            a single message over it is dropped as ``too-large``. A batch a peer
            refuses with 413 (its limit is lower) is sent again in halves.
        key: signs every request (``emulator.transport.auth``); None sends unsigned.
    """

    def __init__(
        self,
        name: str,
        routes: dict[str, str],
        faults: LinkFaults,
        rng: random.Random,
        timeout: float = 5.0,
        max_queue: int = 100_000,
        max_body: int = MAX_BODY,
        key: bytes | None = None,
    ):
        self.name = name
        self.key = key
        self.routes = dict(routes)
        self.faults = faults
        self.rng = rng
        self.timeout = timeout
        self.max_queue = max_queue
        self.max_body = max_body
        self.reply_to: str | None = None
        #: called before each message is sent (the host saves its node's storage: FileStorage.sync);
        #: False drops the message, counted as ``unsaved`` (a change it would acknowledge is not on disk)
        self.before_send: Callable[[], bool] | None = None
        self.learned: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.sent = self.posted = self.duplicated = 0
        self.drops: collections.Counter[str] = collections.Counter()
        self.problems: collections.deque[JsonObject] = collections.deque(maxlen=50)
        self._boxes: dict[str, _Outbox] = {}
        self._seq = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop  # set by open(), before any message

    async def open(self) -> None:
        """Make the HTTP session (call on the loop the host runs on)."""
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
        )

    async def close(self) -> None:
        """Stop every outbox (queued messages are lost) and close the session."""
        tasks = [box.task for box in self._boxes.values() if box.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._boxes.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- routes -------------------------------------------------------------------------

    def learn(self, name: str, url: str, limit: int = 1024) -> None:
        """Remember where ``name`` (a client, say) listens; static routes win."""
        if name in self.routes:
            return
        self.learned[name] = url
        self.learned.move_to_end(name)
        while len(self.learned) > limit:
            self.learned.popitem(last=False)
        box = self._boxes.get(name)
        if box is not None:
            box.url = url

    def _url(self, dest: str) -> str | None:
        return self.routes.get(dest) or self.learned.get(dest)

    # -- the message path ---------------------------------------------------------------

    def transmit(self, src_endpoint: Endpoint, dest: str, body: JsonObject) -> None:
        """Queue ``body`` for ``dest``; see the module docstring for what may happen to it.

        Raises:
            ConfigError: ``dest`` is no node this host knows (a reply to one is dropped instead).
        """
        self.sent += 1
        if self.before_send is not None and not self.before_send():
            self._drop(dest, "unsaved")
            return
        box = self._boxes.get(dest) or self._open(dest, body)
        if box is None:
            return
        if box.version != self.faults.version:
            self._refresh(box)
        if box.blocked:
            self._drop(dest, "partition")
            return
        envelope = {"src": self.name, "dest": dest, "body": body}
        settings = box.settings
        if settings.plain:
            self._push(box, envelope, 0.0, False)
            return
        if settings.loss and self.rng.random() < settings.loss:
            self._drop(dest, "loss")
            return
        self._push(box, envelope, settings.latency.sample(self.rng), self._reorders(settings))
        if settings.duplicate and self.rng.random() < settings.duplicate:
            self.duplicated += 1
            self._push(box, envelope, settings.latency.sample(self.rng), self._reorders(settings))

    def _reorders(self, settings: Settings) -> bool:
        return bool(settings.reorder) and self.rng.random() < settings.reorder

    def _open(self, dest: str, body: JsonObject) -> _Outbox | None:
        url = self._url(dest)
        if url is None:
            if "in_reply_to" in body:  # an answer to a sender that left no address: like a lost reply
                self._drop(dest, "no-route")
                return None
            raise unknown_node(
                dest, self.routes, who=f"{self.name} knows", empty="none", hint="Give it with --peer NAME=URL"
            )
        box = self._boxes[dest] = _Outbox(dest, url)
        box.task = self._loop.create_task(self._pump(box), name=f"capsim-outbox:{self.name}->{dest}")
        return box

    def _refresh(self, box: _Outbox) -> None:
        box.version = self.faults.version
        box.blocked = self.faults.blocked(self.name, box.dest)
        box.settings = self.faults.settings(self.name, box.dest)

    def _push(self, box: _Outbox, envelope: JsonObject, delay: float, reorder: bool) -> None:
        if len(box.heap) >= self.max_queue:
            self._drop(box.dest, "overflow")
            return
        due = self._loop.time() + delay
        if reorder:
            due = self._loop.time() + delay * 2.0 * self.rng.random()  # mean kept, order scrambled
        elif due < box.last_due:
            due = box.last_due  # FIFO: never overtake the previous message
        else:
            box.last_due = due
        heapq.heappush(box.heap, (due, next(self._seq), envelope))
        box.wake.set()

    def wake(self) -> None:
        """Let every outbox look again (a link was released, the node resumed)."""
        for box in self._boxes.values():
            box.wake.set()

    # -- draining -------------------------------------------------------------------------

    def _stalled(self, box: _Outbox) -> bool:
        return self.faults.held(self.name, box.dest) or self.faults.paused(self.name)

    async def _pump(self, box: _Outbox) -> None:
        loop = self._loop
        while True:
            if not box.heap or self._stalled(box):
                box.wake.clear()
                await box.wake.wait()
                continue
            wait = box.heap[0][0] - loop.time()
            if wait > 0:
                box.wake.clear()
                try:
                    await asyncio.wait_for(box.wake.wait(), wait)
                except TimeoutError:
                    pass
                continue
            batch = self._due(box, loop.time())
            if batch:
                await self._post(box, batch)

    def _due(self, box: _Outbox, now: float) -> list[JsonObject]:
        batch: list[JsonObject] = []
        heap = box.heap
        while heap and heap[0][0] <= now and len(batch) < MAX_BATCH:
            batch.append(heapq.heappop(heap)[2])
        if box.version != self.faults.version:
            self._refresh(box)
        if box.blocked:  # cut while it waited: dropped "in flight", as in the simulation
            for _ in batch:
                self._drop(box.dest, "partition")
            return []
        return batch

    async def _post(self, box: _Outbox, batch: list[JsonObject]) -> None:
        data = encode_envelopes(batch)
        if len(data) > self.max_body:  # the peer would refuse it whole (413): send it in halves
            if len(batch) == 1:
                self._fail(box, batch, f"too-large: a {len(data)}-byte message is over the {self.max_body}-byte limit")
                return
            half = len(batch) // 2
            await self._post(box, batch[:half])
            await self._post(box, batch[half:])
            return
        headers = {"Content-Type": "application/json"}
        if self.reply_to:
            headers[REPLY_TO_HEADER] = self.reply_to
        if self.key is not None:
            headers[SIGNATURE_HEADER] = sign(self.key, data)
        session = self._session
        assert session is not None, "open() makes the session before any message"
        too_large = False
        for attempt in (1, 2):
            try:
                async with session.post(box.url + "/msg", data=data, headers=headers) as resp:
                    if resp.status == 202:
                        self.posted += len(batch)
                        box.failing = False
                        return
                    reason = f"refused {resp.status}: {(await resp.text())[:200]}"
                    if resp.status == 413 and len(batch) > 1:
                        too_large = True  # the peer's limit is below ours, and it took none of them
                    break
            except aiohttp.ServerDisconnectedError as exc:
                # A pooled connection the peer closed (it restarted): the request never
                # reached it, so one retry on a fresh connection cannot duplicate it.
                reason = f"unreachable: {exc}"
                if attempt == 1:
                    continue
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                reason = f"unreachable: {type(exc).__name__} {exc}".rstrip()
                break
        if too_large:  # send it again in halves, in order, each as small as the peer needs
            half = len(batch) // 2
            await self._post(box, batch[:half])
            await self._post(box, batch[half:])
            return
        self._fail(box, batch, reason)

    def _fail(self, box: _Outbox, batch: list[JsonObject], reason: str) -> None:
        kind = reason.split(":", 1)[0]
        for _ in batch:
            self._drop(box.dest, kind)
        level = logging.DEBUG if box.failing else logging.WARNING
        box.failing = True
        _log.log(level, "%s: dropped %d message(s) to %s at %s: %s", self.name, len(batch), box.dest, box.url, reason)
        when = time.time()  # wall-clock ok: the real transport runs in real time
        self.problems.append({"time": when, "dest": box.dest, "messages": len(batch), "reason": reason})

    def _drop(self, dest: str, reason: str) -> None:
        self.drops[reason] += 1

    def stats(self) -> JsonObject:
        """Counts so far, the sender's view: sent, posted, duplicated, dropped (by reason), queued."""
        return {
            "sent": self.sent,
            "posted": self.posted,
            "duplicated": self.duplicated,
            "dropped": sum(self.drops.values()),
            "drops": dict(self.drops),
            "queued": sum(len(box.heap) for box in self._boxes.values()),
        }
