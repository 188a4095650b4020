"""Delivers what the outbox holds: claims due entries under a lease, reads each one's typed payload, hands
it to the sender registered for its kind, and records the outcome (sent, retry with backoff, or dead).

Every message is written to the store before anything is sent. 429, 412, 502, 504, timeouts and connection
errors are retried with jittered backoff (honouring Retry-After); 403 and 404 (uninstalled, blocked,
deleted) are permanent, and so is an entry whose kind or payload no sender could read. The deliverer knows
no kind itself: the packages that own them register their senders (the helpdesk its tickets', this
package the sweep's notices).

A claim lasts one lease; after that another worker may claim the entry. So a send starts only in the first
half of its lease (later ones are handed back at once), and the connector gives up on a request after a
third of it (`send_timeout`): every send ends before another worker may repeat it.

With a `Leadership`, only the process that leads delivery claims and sends (`leader.py`): the processes
sharing a store then pace as one sender. A follower's `drain()` waits a moment and sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind

from bot.notify.outbox.connector import Connector, Undeliverable, sending_by
from bot.notify.outbox.kinds import InvalidEntry, Kind, Payload, parse
from bot.notify.outbox.leader import Leadership
from bot.observability import tracer
from bot.store.base import OutboxEntry, Store

__all__ = ["Deliverer", "Result", "Sender"]

log = logging.getLogger(__name__)

PERMANENT = frozenset({400, 401, 403, 404})
MAX_ATTEMPTS = 60  # with backoff capped at 5 minutes: several hours of outage before giving up
MAX_BACKOFF = 300.0
START_SHARE = 0.5  # of the lease: a claimed entry is sent only this early in its lease
NO_SENDER_RETRY = 60.0  # seconds: a kind this process has no sender for waits for a worker that has

P = TypeVar("P", bound=Payload)
Result = dict[str, Any] | None  # what the store keeps with a sent entry
Sender = Callable[[P], Awaitable[Result]]


def _status_of(error: Exception) -> tuple[int | None, float | None]:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    headers = getattr(response, "headers", None) or {}
    retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        wait = float(retry_after) if retry_after is not None else None
    except ValueError:
        wait = None
    return (int(status) if isinstance(status, int) else None), wait


class Deliverer:
    """Sends outbox entries. `drain()` may run from several tasks or processes: leases keep them apart.

    deliverer = Deliverer(store, connector)
    deliverer.register(PostTicket, post_ticket)   # async (PostTicket) -> result to keep, or None
    sent = await deliverer.drain()
    """

    def __init__(
        self,
        store: Store,
        connector: Connector,
        *,
        lease_seconds: float = 30.0,
        leadership: Leadership | None = None,
    ) -> None:
        """Args:
        leadership: send only while this process leads delivery (processes sharing a store); None:
            always send (one process, or tests).
        """
        self.store = store
        self.connector = connector
        self.lease_seconds = lease_seconds
        self.leadership = leadership
        self._senders: dict[Kind, Sender[Any]] = {}
        # Lanes in progress, across concurrent rounds: a person's next message waits for their last. A
        # lane's lock lives as long as a round uses it.
        self._lanes: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def register(self, payload: type[P], sender: Sender[P]) -> None:
        """Send entries of `payload`'s kind with `sender` (it raises `Undeliverable` when it can't)."""
        self._senders[payload.kind] = sender

    async def drain(self, *, limit: int = 20) -> int:
        """Deliver what is due now; returns how many were sent.

        Entries for one person or one ticket go out in order, one after another, also when rounds
        overlap in this process; different people's concurrently (the send limiter keeps the pace Teams
        allows). A follower (another process leads delivery) waits a quarter of the leader's lease, then
        returns 0 without claiming anything: callers that loop on `drain()` don't spin.
        """
        if self.leadership is not None and not await self.leadership.hold():
            await self.leadership.wait_turn()
            return 0
        lanes: dict[str, list[tuple[OutboxEntry, Payload]]] = {}
        start_by = asyncio.get_running_loop().time() + self.lease_seconds * START_SHARE
        for entry in await self.store.claim_due(limit=limit, lease_seconds=self.lease_seconds):
            try:
                payload = parse(entry.kind, entry.payload)
            except InvalidEntry as exc:
                log.warning("outbox %s (%s) can't be read: %s", entry.id, entry.kind, exc)
                await self.store.mark_dead(entry, error=str(exc))
                continue
            lanes.setdefault(payload.lane or f"entry-{entry.id}", []).append((entry, payload))

        async def run(lane: str, entries: list[tuple[OutboxEntry, Payload]]) -> int:
            async with self._lanes.setdefault(lane, asyncio.Lock()):
                return sum([await self._deliver_one(entry, payload, start_by) for entry, payload in entries])

        return sum(await asyncio.gather(*(run(lane, entries) for lane, entries in lanes.items())))

    async def _deliver_one(self, entry: OutboxEntry, payload: Payload, start_by: float) -> int:
        sender = self._senders.get(payload.kind)
        if sender is None:  # a wiring mistake here, not the entry's fault: another worker may send it
            log.error("outbox %s: this process has no sender for %s", entry.id, entry.kind)
            await self.store.mark_retry(entry, delay=NO_SENDER_RETRY, error=f"no sender for {entry.kind}")
            return 0
        if asyncio.get_running_loop().time() > start_by:  # too late in the lease: let it go, unsent
            await self.store.mark_retry(entry, delay=0, error="its turn came too late in the lease")
            return 0
        if self.leadership is not None and not await self.leadership.hold():
            # Another process took over (this one was starved past its lease): hand it back for them.
            await self.store.mark_retry(entry, delay=0, error="another process leads delivery now")
            return 0
        try:
            attributes: dict[str, str | int] = {"outbox.kind": entry.kind, "outbox.attempt": entry.attempts}
            with (
                tracer.start_as_current_span("connector send", kind=SpanKind.CLIENT, attributes=attributes),
                sending_by(start_by),  # checked again right before the request itself
            ):
                result = await sender(payload)
        except Undeliverable as exc:
            if not exc.backoff and not exc.permanent and exc.retry_after is not None:
                await self.store.mark_retry(
                    entry, delay=exc.retry_after, error=str(exc)
                )  # a wait, no failure
                return 0
            await self._failed(entry, str(exc), permanent=exc.permanent, retry_after=exc.retry_after)
            return 0
        except Exception as exc:  # the connector's errors carry an HTTP status; anything else: retry
            status, retry_after = _status_of(exc)
            if status == 429:
                self.connector.limiter.throttled()
            reason = f"HTTP {status}" if status else type(exc).__name__
            await self._failed(entry, reason, permanent=status in PERMANENT, retry_after=retry_after)
            return 0
        self.connector.limiter.accepted()
        await self.store.mark_sent(entry, result)
        lease_end = start_by + self.lease_seconds * (1 - START_SHARE)
        if asyncio.get_running_loop().time() > lease_end:  # the one at-least-once window: say it happened
            log.warning(
                "outbox %s (%s) was recorded after its lease ended: it may be sent twice",
                entry.id,
                entry.kind,
            )
        return 1

    async def resign(self) -> None:
        """This process stops delivering: let another take the lead at once rather than when it ends."""
        if self.leadership is not None:
            await self.leadership.resign()

    async def _failed(
        self, entry: OutboxEntry, reason: str, *, permanent: bool, retry_after: float | None
    ) -> None:
        if permanent or entry.attempts >= MAX_ATTEMPTS:
            log.warning("outbox %s (%s) undeliverable: %s", entry.id, entry.kind, reason)
            await self.store.mark_dead(entry, error=reason)
            return
        backoff = min(MAX_BACKOFF, 2.0**entry.attempts) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter only
        # Never sooner than the service asked; never a hot loop when it asks for 0.
        delay = max(retry_after or 0.0, backoff)
        log.info("outbox %s (%s) will retry in %.1f s: %s", entry.id, entry.kind, delay, reason)
        await self.store.mark_retry(entry, delay=delay, error=reason)
