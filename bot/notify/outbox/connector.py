"""The Bot Connector as the outbox's senders use it: post a card in a channel, update a posted card, send
to a person's conversation (paced by Teams' limits). Failures reach the caller, never botbuilder's
on_turn_error, so a lost message is never marked sent.

A claim on an entry lasts one lease; a request to the connector gives up after a third of it
(`adapter.send_timeout`, set in the adapter `connector_adapter` makes), so a send that started in the first
half of the lease ends before another worker may repeat it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

from bot.notify.outbox.limits import SendLimiter
from bot.store.base import Store

__all__ = [
    "Connector",
    "Posted",
    "Undeliverable",
    "conversation_with",
    "in_time",
    "sending_by",
]

Card = dict[str, Any]


class Undeliverable(Exception):
    """A sender can't send this entry: `permanent` (never will: dead) or not yet (retry, not sooner
    than `retry_after` seconds when given). `backoff=False`: nothing failed, the entry just waits for
    something (a report for its notices): retry after exactly `retry_after`, growing no backoff."""

    def __init__(
        self, message: str, *, permanent: bool, retry_after: float | None = None, backoff: bool = True
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.backoff = backoff


_SEND_BY: contextvars.ContextVar[float | None] = contextvars.ContextVar("outbox_send_by", default=None)


@contextlib.contextmanager
def sending_by(deadline: float) -> Iterator[None]:
    """Requests to the connector made inside this block start by `deadline` (the event loop's clock) or
    not at all: the check sits right before the request, after pacing and the sender's own reads."""
    token = _SEND_BY.set(deadline)
    try:
        yield
    finally:
        _SEND_BY.reset(token)


SEND_SLOTS = 16  # sends in flight at once, per process
# botbuilder sends from the event loop's default executor (6 threads on a 2-core machine). Sends that the
# connector holds open fill it, and a send already checked "in time" would then wait there for a thread,
# reaching Teams long after its deadline. So sends take a slot first, and the pool has a thread for every
# slot and some to spare for the loop's other blocking work (DNS lookups).
_THREADS = SEND_SLOTS + 8
_sized: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _enough_threads() -> None:
    loop = asyncio.get_running_loop()
    if loop not in _sized:
        loop.set_default_executor(ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="connector"))
        _sized.add(loop)


def in_time() -> None:
    """Raise `Undeliverable` (retry at once) when the send under way (`sending_by`) is past its deadline.

    Checked when a send takes its slot, and again after the adapter fetched a token for it."""
    deadline = _SEND_BY.get()
    if deadline is not None and asyncio.get_running_loop().time() > deadline:
        raise Undeliverable("its turn came too late in the lease", permanent=False, retry_after=0.0)


@dataclass(frozen=True)
class Posted:
    """Where a card was posted in a channel (its thread), so it can be updated later."""

    activity_id: str | None
    conversation_id: str | None


class Connector:
    """Sends through `adapter` as the bot `app_id`, within Teams' limits (`limiter`)."""

    def __init__(
        self, adapter: CloudAdapter, *, app_id: str = "", limiter: SendLimiter | None = None
    ) -> None:
        self.adapter = adapter
        self.app_id = app_id
        self.limiter = limiter or SendLimiter()
        self._slots = asyncio.Semaphore(SEND_SLOTS)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """A free thread for the request, then the deadline check: the request starts now or not at all."""
        _enough_threads()
        async with self._slots:
            in_time()
            yield

    async def post_in_channel(
        self, card: Card, *, service_url: str, channel_id: str, bot_id: str = "", tenant: str | None = None
    ) -> Posted:
        """Start a thread in a channel with `card`."""
        channel_data: dict[str, Any] = {"channel": {"id": channel_id}}
        if tenant is not None:
            channel_data["tenant"] = {"id": tenant}
        parameters = ConversationParameters(
            is_group=True,
            bot=ChannelAccount(id=bot_id or self.app_id),
            tenant_id=tenant,
            channel_data=channel_data,
            activity=MessageFactory.attachment(CardFactory.adaptive_card(card)),
        )
        posted: list[Posted] = []

        async def remember(context: TurnContext) -> None:
            posted.append(Posted(context.activity.id, context.activity.conversation.id))

        async with self._slot():
            await self.adapter.create_conversation(
                self.app_id, remember, parameters, "msteams", service_url, None
            )
        return posted[0] if posted else Posted(None, None)

    async def update_card(
        self, card: Card, *, service_url: str, conversation_id: str, activity_id: str | None
    ) -> None:
        """Replace a card posted in a channel thread."""
        reference = {
            "conversation": {"id": conversation_id, "isGroup": True},
            "serviceUrl": service_url,
            "channelId": "msteams",
            "bot": {"id": self.app_id},
        }
        attachment = CardFactory.adaptive_card(card)

        async def update(context: TurnContext) -> None:
            activity = Activity(type=ActivityTypes.message, id=activity_id, attachments=[attachment])
            await context.update_activity(activity)

        await self._continue(reference, update)

    async def send(self, reference: dict[str, Any], message: Activity) -> None:
        """Send `message` in the conversation `reference` names, when Teams' limits allow."""
        await self.limiter.wait(str((reference.get("conversation") or {}).get("id", "")))

        async def send(context: TurnContext) -> None:
            await context.send_activity(message)

        await self._continue(reference, send)

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

        async with self._slot():
            await self.adapter.continue_conversation(ref, guarded, self.app_id)
        if failures:
            raise failures[0]


async def conversation_with(store: Store, tenant: str, user: str, *, otherwise: str) -> dict[str, Any]:
    """The person's 1:1 conversation reference.

    Raises:
        Undeliverable: (permanent, saying `otherwise`) the bot has none: it can't start one.
    """
    reference = await store.get_reference(tenant, user)
    if reference is None:
        raise Undeliverable(otherwise, permanent=True)
    return reference
