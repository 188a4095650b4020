"""Delivers what the outbox holds through the Bot Connector: ticket posts, card updates, user notices.

Every message is written to the store before anything is sent; this worker claims due entries under a
lease, sends, and marks them sent. 429, 412, 502, 504, timeouts and connection errors are retried with
jittered backoff (honouring Retry-After); 403 and 404 (uninstalled, blocked, deleted) are permanent.

A claim lasts one lease; after that another worker may claim the entry. So a send starts only in the first
half of its lease (later ones are handed back at once) and the connector client gives up on a request after
a third of it (`send_timeout`, set in the adapter): every send ends before another worker may repeat it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationParameters,
    ConversationReference,
)
from opentelemetry.trace import SpanKind

from bot.notify.limits import SendLimiter
from bot.observability import tracer
from bot.store.base import OutboxEntry, Store, Ticket
from cards.common import to_dict
from cards.notice import build_digest_card, build_problem_card
from cards.ticket import build_ticket_card

__all__ = ["Deliverer", "channel_key"]

log = logging.getLogger(__name__)

RETRYABLE = frozenset({408, 412, 429, 500, 502, 503, 504})
PERMANENT = frozenset({400, 401, 403, 404})
MAX_ATTEMPTS = 60  # with backoff capped at 5 minutes: several hours of outage before giving up
MAX_BACKOFF = 300.0
START_SHARE = 0.5  # of the lease: a claimed entry is sent only this early in its lease


def send_timeout(lease_seconds: float) -> float:
    """How long one request to the Bot Connector may take: started in the first half of the lease, it ends
    before the lease does, leaving time to record the outcome."""
    return max(0.5, lease_seconds / 3)


NO_CHANNEL_RETRY = 60.0  # seconds: a ticket waits for a helpdesk channel to be set up


def channel_key(tenant: str) -> str:
    return f"helpdesk_channel:{tenant.lower()}"


DEFAULT_CHANNEL = "helpdesk_channel:default"  # the last channel set in any tenant: where digests go


def card_key(number: int) -> str:
    """Where a ticket's card was posted. Kept beside the ticket, not in it: posting is not a change
    an agent could conflict with, so it must not bump the version the card's buttons carry."""
    return f"ticket_card:{number}"


class _Undeliverable(Exception):
    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


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
    """Sends outbox entries. `drain()` may run from several tasks or processes: leases keep them apart."""

    def __init__(
        self, adapter: CloudAdapter, store: Store, *, app_id: str = "", lease_seconds: float = 30.0
    ) -> None:
        self.adapter = adapter
        self.store = store
        self.app_id = app_id
        self.lease_seconds = lease_seconds
        self._handlers: dict[str, Callable[[OutboxEntry], Awaitable[dict[str, Any] | None]]] = {
            "post_ticket": self._post_ticket,
            "update_ticket_card": self._update_ticket_card,
            "notify_user": self._notify_user,
            "notify_problem": self._notify_problem,
            "digest": self._digest,
        }
        self.limiter = SendLimiter()
        # Lanes in progress, across concurrent rounds: a person's next message waits for their last. A
        # lane's lock lives as long as a round uses it.
        self._lanes: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def drain(self, *, limit: int = 20) -> int:
        """Deliver what is due now; returns how many were sent.

        Entries for one person or one ticket go out in order, one after another, also when rounds
        overlap in this process; different people's concurrently (the send limiter keeps the pace Teams
        allows).
        """
        lanes: dict[str, list[OutboxEntry]] = {}
        start_by = asyncio.get_running_loop().time() + self.lease_seconds * START_SHARE
        for entry in await self.store.claim_due(limit=limit, lease_seconds=self.lease_seconds):
            lane = str(
                entry.payload.get("user") or entry.payload.get("number") or f"entry-{entry.id}"
            ).lower()
            lanes.setdefault(lane, []).append(entry)

        async def run(lane: str, entries: list[OutboxEntry]) -> int:
            async with self._lanes.setdefault(lane, asyncio.Lock()):
                return sum([await self._deliver_one(entry, start_by) for entry in entries])

        return sum(await asyncio.gather(*(run(lane, entries) for lane, entries in lanes.items())))

    async def _deliver_one(self, entry: OutboxEntry, start_by: float) -> int:
        handler = self._handlers.get(entry.kind)
        if handler is None:
            await self.store.mark_dead(entry, error=f"unknown kind {entry.kind}")
            return 0
        if asyncio.get_running_loop().time() > start_by:  # too late in the lease: let it go, unsent
            await self.store.mark_retry(entry, delay=0, error="its turn came too late in the lease")
            return 0
        try:
            attributes: dict[str, str | int] = {"outbox.kind": entry.kind, "outbox.attempt": entry.attempts}
            with tracer.start_as_current_span("connector send", kind=SpanKind.CLIENT, attributes=attributes):
                result = await handler(entry)
        except _Undeliverable as exc:
            await self._failed(entry, str(exc), permanent=exc.permanent, retry_after=exc.retry_after)
            return 0
        except Exception as exc:  # the connector's errors carry an HTTP status; anything else: retry
            status, retry_after = _status_of(exc)
            if status == 429:
                self.limiter.throttled()
            permanent = status in PERMANENT
            reason = f"HTTP {status}" if status else type(exc).__name__
            await self._failed(entry, reason, permanent=permanent, retry_after=retry_after)
            return 0
        self.limiter.accepted()
        await self.store.mark_sent(entry, result)
        return 1

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

    # --- kinds ----------------------------------------------------------------------------------------

    async def _ticket(self, entry: OutboxEntry) -> Ticket:
        ticket = await self.store.get_ticket(int(entry.payload["number"]))
        if ticket is None:
            raise _Undeliverable(f"ticket {entry.payload['number']} is gone", permanent=True)
        return ticket

    async def _post_ticket(self, entry: OutboxEntry) -> dict[str, Any]:
        ticket = await self._ticket(entry)
        earlier = await self.store.get_setting(card_key(ticket.number))
        if earlier is not None:
            return earlier  # posted by an earlier, interrupted attempt
        channel = await self.store.get_setting(channel_key(ticket.tenant))
        if channel is None:
            raise _Undeliverable("no helpdesk channel yet", permanent=False, retry_after=NO_CHANNEL_RETRY)
        posted: dict[str, str] = {}

        async def remember(context: TurnContext) -> None:
            posted["activity_id"] = context.activity.id
            posted["conversation_id"] = context.activity.conversation.id

        parameters = ConversationParameters(
            is_group=True,
            bot=ChannelAccount(id=channel.get("bot_id") or self.app_id),
            tenant_id=ticket.tenant,
            channel_data={"channel": {"id": channel["channel_id"]}, "tenant": {"id": ticket.tenant}},
            activity=MessageFactory.attachment(CardFactory.adaptive_card(to_dict(build_ticket_card(ticket)))),
        )
        await self.adapter.create_conversation(
            self.app_id, remember, parameters, "msteams", channel["service_url"], None
        )
        posted["service_url"] = channel["service_url"]
        await self.store.set_setting(card_key(ticket.number), posted)
        return posted

    async def _continue(
        self, reference: dict[str, Any], logic: Callable[[TurnContext], Awaitable[None]]
    ) -> None:
        """Run `logic` in the conversation and let its failure reach the caller: the adapter's turn
        pipeline would hand it to on_turn_error (and a lost message would be marked sent)."""
        ref = ConversationReference().deserialize(reference)
        failures: list[Exception] = []

        async def guarded(context: TurnContext) -> None:
            try:
                await logic(context)
            except Exception as exc:
                failures.append(exc)

        await self.adapter.continue_conversation(ref, guarded, self.app_id)
        if failures:
            raise failures[0]

    async def _update_ticket_card(self, entry: OutboxEntry) -> dict[str, Any] | None:
        ticket = await self._ticket(entry)
        where = await self.store.get_setting(card_key(ticket.number))
        if where is None:
            raise _Undeliverable("the ticket card is not posted yet", permanent=False, retry_after=5.0)
        reference = {
            "conversation": {"id": where["conversation_id"], "isGroup": True},
            "serviceUrl": where["service_url"],
            "channelId": "msteams",
            "bot": {"id": self.app_id},
        }
        card = CardFactory.adaptive_card(to_dict(build_ticket_card(ticket)))

        async def update(context: TurnContext) -> None:
            activity = Activity(type=ActivityTypes.message, id=where["activity_id"], attachments=[card])
            await context.update_activity(activity)

        await self._continue(reference, update)
        return None

    async def _notify_user(self, entry: OutboxEntry) -> dict[str, Any] | None:
        payload = entry.payload
        reference = await self.store.get_reference(payload["tenant"], payload["user"])
        if reference is None:
            raise _Undeliverable("no conversation with the user yet", permanent=True)
        ticket = await self.store.get_ticket(int(payload["number"])) if payload.get("number") else None

        await self.limiter.wait(str((reference.get("conversation") or {}).get("id", "")))

        # One activity, text and card together: were they two, a 429 on the card after the text was
        # accepted would send the text again on retry.
        message = MessageFactory.text(payload["text"])
        if ticket is not None:
            card = to_dict(build_ticket_card(ticket, for_agents=False))
            message = MessageFactory.attachment(CardFactory.adaptive_card(card), text=payload["text"])

        async def send(context: TurnContext) -> None:
            await context.send_activity(message)

        await self._continue(reference, send)
        return None

    async def _notify_problem(self, entry: OutboxEntry) -> dict[str, Any] | None:
        payload = entry.payload
        reference = await self.store.get_reference(payload["tenant"], payload["user"])
        if reference is None:
            raise _Undeliverable("no conversation with the user any more", permanent=True)
        await self.limiter.wait(str((reference.get("conversation") or {}).get("id", "")))
        card = to_dict(build_problem_card(payload["finding"], user=payload["user"]))

        async def send(context: TurnContext) -> None:
            await context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))

        await self._continue(reference, send)
        return None

    async def _digest(self, entry: OutboxEntry) -> dict[str, Any] | None:
        channel = await self.store.get_setting(DEFAULT_CHANNEL)
        if channel is None:
            raise _Undeliverable("no helpdesk channel yet", permanent=False, retry_after=NO_CHANNEL_RETRY)
        payload = entry.payload
        card = to_dict(build_digest_card(payload["counts"], payload["people"], total=int(payload["total"])))
        parameters = ConversationParameters(
            is_group=True,
            bot=ChannelAccount(id=channel.get("bot_id") or self.app_id),
            channel_data={"channel": {"id": channel["channel_id"]}},
            activity=MessageFactory.attachment(CardFactory.adaptive_card(card)),
        )

        async def done(context: TurnContext) -> None:
            return None

        await self.adapter.create_conversation(
            self.app_id, done, parameters, "msteams", channel["service_url"], None
        )
        return None


async def drain_forever(
    deliverer: Deliverer,
    *,
    every: float = 5.0,
    batch: int = 20,
    rounds: int = 1,
    on_round: Callable[[int], None] | None = None,
) -> None:
    """Keep delivering (`serve`, `deliver`): retries come due, and other instances' leases expire.
    After a round that sent something the next starts at once: a backlog goes at the pace Teams allows.
    With `rounds` > 1, rounds overlap: one claims while another sends, so the claim's round trips to
    the store don't leave the connector idle."""

    async def loop() -> None:
        while True:
            sent = 0
            try:
                sent = await deliverer.drain(limit=batch)
            except Exception:
                log.exception("outbox delivery round failed; trying again")
            if on_round is not None:
                on_round(sent)
            if sent == 0:
                await asyncio.sleep(every)

    await asyncio.gather(*(loop() for _ in range(rounds)))
