"""How the helpdesk's outbox entries are sent: a new ticket's card to its tenant's helpdesk channel, the
card updated as the ticket changes, ticket news to the person, and each sweep's delivery report to the
helpdesk channel (`reports`; the unreachable-only digest older versions queued still goes out).

    deliverer = deliverer_for(settings, store)
    register_senders(deliverer)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from botbuilder.core import CardFactory, MessageFactory

from bot.helpdesk.book import TicketBook
from bot.helpdesk.channels import (
    TicketCard,
    get_agent_ids,
    get_default_channel,
    get_helpdesk_channel,
    get_ticket_card,
    set_ticket_card,
)
from bot.helpdesk.reports import DeliveryReports
from bot.helpdesk.tickets import Ticket
from bot.notify.outbox import (
    Connector,
    Deliverer,
    DeliveryReport,
    Digest,
    NotifyUser,
    PostTicket,
    Result,
    Undeliverable,
    UpdateTicketCard,
    conversation_with,
)
from bot.store.base import Store
from cards.common import MAX_REFRESH_USERS, to_dict
from cards.notice import build_digest_card
from cards.ticket import FixLine, build_ticket_card

__all__ = ["FixHistory", "HelpdeskSenders", "channel_ticket_card", "register_senders"]

# The fixes made for a person (their Entra object id), newest first: `bot.fixing.Fixer.history`.
FixHistory = Callable[[str], Awaitable[Sequence[FixLine]]]

NO_CHANNEL_RETRY = 60.0  # seconds: a ticket waits for a helpdesk channel to be set up
NOT_POSTED_RETRY = 5.0  # seconds: an update waits for the card's first post


async def channel_ticket_card(
    store: Store,
    ticket: Ticket,
    *,
    for_agents: bool = False,
    notice: str | None = None,
    notice_color: str = "Warning",
    fixes: Sequence[FixLine] = (),
) -> dict[str, Any]:
    """The ticket's card in the helpdesk channel: the read-only view everyone sees (`for_agents`: an
    agent's view), refreshing (Universal Actions) to the agent view for the agents Teams knows by id.
    `fixes`: the fixes made for the ticket's person, listed on it."""
    agents = sorted((await get_agent_ids(store, ticket.tenant)).values())[:MAX_REFRESH_USERS]
    view = build_ticket_card(
        ticket, for_agents=for_agents, agents=agents, notice=notice, notice_color=notice_color, fixes=fixes
    )
    return to_dict(view)


def register_senders(deliverer: Deliverer, *, fix_history: FixHistory | None = None) -> None:
    """Let `deliverer` send the helpdesk's kinds (post and update ticket cards, ticket news, the sweep's
    delivery reports and older versions' digests). With `fix_history`, ticket cards list the fixes made
    for their person."""
    senders = HelpdeskSenders(deliverer.store, deliverer.connector, fix_history=fix_history)
    deliverer.register(PostTicket, senders.post_ticket)
    deliverer.register(UpdateTicketCard, senders.update_ticket_card)
    deliverer.register(NotifyUser, senders.notify_user)
    deliverer.register(Digest, senders.digest)
    deliverer.register(DeliveryReport, DeliveryReports(deliverer.store, deliverer.connector).send)


class HelpdeskSenders:
    def __init__(self, store: Store, connector: Connector, *, fix_history: FixHistory | None = None) -> None:
        self.store = store
        self.connector = connector
        self.tickets = TicketBook(store)
        self.fix_history = fix_history

    async def _card(self, ticket: Ticket) -> dict[str, Any]:
        """The channel's card (the read-only view), with the fixes made for its person."""
        fixes = await self.fix_history(ticket.user_aad) if self.fix_history is not None else ()
        return await channel_ticket_card(self.store, ticket, fixes=fixes)

    async def _ticket(self, number: int) -> Ticket:
        ticket = await self.tickets.get(number)
        if ticket is None:
            raise Undeliverable(f"ticket {number} is gone", permanent=True)
        return ticket

    async def post_ticket(self, entry: PostTicket) -> Result:
        """The ticket's card, a new thread in the helpdesk channel; where it went is kept (and returned)."""
        ticket = await self._ticket(entry.number)
        earlier = await get_ticket_card(self.store, ticket.number)
        if earlier is not None:
            return earlier.to_setting()  # posted by an earlier, interrupted attempt
        channel = await get_helpdesk_channel(self.store, ticket.tenant)
        if channel is None:
            raise Undeliverable("no helpdesk channel yet", permanent=False, retry_after=NO_CHANNEL_RETRY)
        posted = await self.connector.post_in_channel(
            await self._card(ticket),
            service_url=channel.service_url,
            channel_id=channel.channel_id,
            bot_id=channel.bot_id,
            tenant=ticket.tenant,
        )
        card = TicketCard(posted.activity_id, posted.conversation_id, channel.service_url)
        await set_ticket_card(self.store, ticket.number, card)
        return card.to_setting()

    async def update_ticket_card(self, entry: UpdateTicketCard) -> None:
        ticket = await self._ticket(entry.number)
        where = await get_ticket_card(self.store, ticket.number)
        if where is None or where.conversation_id is None:
            raise Undeliverable(
                "the ticket card is not posted yet", permanent=False, retry_after=NOT_POSTED_RETRY
            )
        await self.connector.update_card(
            await self._card(ticket),
            service_url=where.service_url,
            conversation_id=where.conversation_id,
            activity_id=where.activity_id,
        )

    async def notify_user(self, entry: NotifyUser) -> None:
        """A text to the person, with their ticket's card when it names one that still exists."""
        reference = await conversation_with(
            self.store, entry.tenant, entry.user, otherwise="no conversation with the user yet"
        )
        ticket = await self.tickets.get(entry.number) if entry.number else None
        # One activity, text and card together: were they two, a 429 on the card after the text was
        # accepted would send the text again on retry.
        message = MessageFactory.text(entry.text)
        if ticket is not None:
            card = CardFactory.adaptive_card(to_dict(build_ticket_card(ticket, for_agents=False)))
            message = MessageFactory.attachment(card, text=entry.text)
        await self.connector.send(reference, message)

    async def digest(self, entry: Digest) -> None:
        channel = await get_default_channel(self.store)
        if channel is None:
            raise Undeliverable("no helpdesk channel yet", permanent=False, retry_after=NO_CHANNEL_RETRY)
        card = build_digest_card(entry.counts, entry.people, total=entry.total)
        await self.connector.post_in_channel(
            to_dict(card),
            service_url=channel.service_url,
            channel_id=channel.channel_id,
            bot_id=channel.bot_id,
        )
