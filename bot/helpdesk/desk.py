"""The helpdesk's side of the conversation: escalating, the helpdesk channel, and agents' ticket actions."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.diagnosis import RecordType, Report
from bot.errors import BackendError
from bot.helpdesk import tickets
from bot.helpdesk.book import TicketBook, TicketChanged, now
from bot.helpdesk.channels import (
    HelpdeskChannel,
    get_agent_ids,
    get_helpdesk_channel,
    get_ticket_card,
    set_agent_ids,
    set_helpdesk_channel,
)
from bot.helpdesk.senders import FixHistory, channel_ticket_card
from bot.helpdesk.shown import Chat, Shown, forget_last_diagnosis, get_last_diagnosis, set_last_diagnosis
from bot.helpdesk.tickets import Ticket
from bot.investigation import Investigator
from bot.notify.outbox import Deliverer, NotifyUser, PostTicket, UpdateTicketCard, enqueue
from bot.notify.preferences import set_muted, set_watch
from bot.store.base import Store
from cards.common import to_dict
from cards.ticket import FixLine, build_ticket_list_card

__all__ = ["MAX_OPEN_TICKETS", "NOT_RUN", "Escalation", "EscalationRefused", "Helpdesk"]

log = logging.getLogger(__name__)
Card = dict[str, Any]

MAX_OPEN_TICKETS = 3  # per person: more waits for the helpdesk to answer (a flood opens no threads)
NOT_RUN = "no diagnosis was run in this chat"  # a ticket's report when nothing was diagnosed before it


@dataclass(frozen=True)
class Escalation:
    """Someone asks for a ticket about `user`'s record (or mailbox, with no record).

    `reader` is who asked (the person, or an agent for them): the record is read as them.
    `diagnosis` is what the ticket carries: "run", a fresh diagnosis of the record (the card's Escalate
    button names its record); a `Report`, the diagnosis the person was shown in the chat (its record is
    `record`); "none", no diagnosis at all (nothing was diagnosed in the chat before "talk to a human").
    """

    tenant: str
    user: str
    user_name: str
    record_type: RecordType
    record: str | None
    comment: str
    reader: str | None = None
    diagnosis: Report | Literal["run", "none"] = "run"


class EscalationRefused(Exception):
    """The person may not open this ticket now: the message says why; `existing` is their open ticket about
    the same record, when that is the reason."""

    def __init__(self, message: str, existing: Ticket | None = None) -> None:
        super().__init__(message)
        self.existing = existing


_NOTICES = {
    "ticket_assign": "Your ticket {key} was assigned to {who}: they're on it.",
    "ticket_resolve": "Your ticket {key} was resolved by {who}.",
    "ticket_reopen": "Your ticket {key} was reopened by {who}.",
    "ticket_rerun": "{who} re-ran the diagnosis on your ticket {key}.",
}


class Helpdesk:
    """Tickets are stored first, then their messages go through the outbox (never lost, never twice)."""

    def __init__(
        self,
        store: Store,
        deliverer: Deliverer | None,
        investigator: Investigator,
        agents: frozenset[str],
        *,
        clock: Callable[[], datetime] | None = None,
        fix_history: FixHistory | None = None,
    ):
        """`fix_history`: the fixes made for a person (`Fixer.history`): ticket cards list them."""
        self.store = store
        self.fix_history = fix_history
        self.clock = clock or _utc_now  # when diagnoses were shown, and whether they are still carried
        self.tickets = TicketBook(store)
        self.deliverer = deliverer
        self.investigator = investigator
        self.agents = frozenset(a.lower() for a in agents)
        self._tasks: set[asyncio.Task[int]] = set()
        # One escalation at a time per person in this process, so the limits below can't be raced.
        self._escalating: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def is_agent(self, user: str | None) -> bool:
        return bool(user) and str(user).lower() in self.agents

    def kick(self) -> None:
        """Deliver now, in the background: the turn doesn't wait for the connector."""
        if self.deliverer is None:
            return
        task = asyncio.create_task(self.deliverer.drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for background deliveries (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def escalate(self, asked: Escalation) -> tuple[Ticket, bool]:
        """Store a ticket with its diagnosis (`asked.diagnosis`: fresh, the one shown, or none) and queue its
        post. Returns (ticket, a channel is set up).

        Raises:
            EscalationRefused: the person has a ticket open about this record, or too many open.
            StoreError: the ticket could not be stored (nothing was sent).
        """
        async with self._escalating.setdefault(asked.user.lower(), asyncio.Lock()):
            await self._may_open(asked.user, asked.record_type, asked.record)
            return await self._open_ticket(asked)

    async def _may_open(self, user: str, record_type: RecordType, record: str | None) -> None:
        mine = await self.tickets.find(user_aad=user, open_only=True, limit=MAX_OPEN_TICKETS + 10)
        wanted = (record_type, (record or "").lower())
        same = next((t for t in mine if (t.record_type, (t.record_id or "").lower()) == wanted), None)
        if same is not None:
            raise EscalationRefused(f"{same.key} is open already", existing=same)
        if len(mine) >= MAX_OPEN_TICKETS:
            keys = ", ".join(t.key for t in mine[:MAX_OPEN_TICKETS])
            raise EscalationRefused(f"{len(mine)} tickets are open already: {keys}")

    async def _report(self, asked: Escalation) -> dict[str, Any]:
        """The diagnosis the ticket keeps: the one shown, a fresh one, or the reason there is none."""
        if isinstance(asked.diagnosis, Report):
            return asked.diagnosis.to_dict()
        if asked.diagnosis == "none":
            return {"findings": [], "not_run": NOT_RUN}
        try:
            report = await self.investigator.run(
                asked.user, asked.record, asked.record_type, reader=asked.reader
            )
        except BackendError as exc:
            return {"findings": [], "error": f"diagnosis unavailable: {exc.service}"}
        return report.to_dict()

    async def _open_ticket(self, asked: Escalation) -> tuple[Ticket, bool]:
        """The one place a ticket is made from a report (however the escalation came)."""
        report = await self._report(asked)
        found = report.get("record")
        subject = found.get("subject") if isinstance(found, dict) else None
        draft = Ticket(
            number=0,
            tenant=asked.tenant,
            user_aad=asked.user,
            user_name=asked.user_name,
            record_type=asked.record_type,
            record_id=asked.record,
            subject=subject,
            report=report,
            comment=asked.comment.strip()[:1000],
            changed_by=asked.user_name,
        )
        ticket = await self.tickets.open(draft)
        await enqueue(self.store, f"ticket:{ticket.number}:post", PostTicket(number=ticket.number))
        has_channel = await self.channel(asked.tenant) is not None
        if not has_channel:
            log.warning(
                "%s kept, but no helpdesk channel is set: a helpdesk agent (HELPDESK_AGENTS) should @mention the bot "
                "in the channel with 'use this channel for helpdesk'",
                ticket.key,
            )
        self.kick()
        return ticket, has_channel

    async def channel(self, tenant: str) -> HelpdeskChannel | None:
        """The tenant's helpdesk channel, if one is set."""
        return await get_helpdesk_channel(self.store, tenant)

    async def may_set_channel(self, tenant: str, team: str, user: str | None) -> bool:
        """Agents may choose the helpdesk channel. A team owner may only move it within the team (its Entra
        group id) that already holds it, or choose the first one where no agents are configured: owning
        *some* team must not let anyone divert the tickets to their own channel."""
        if self.is_agent(user):
            return True
        current = await self.channel(tenant)
        same_team = current is not None and bool(team) and current.team.lower() == team.lower()
        allowed = not self.agents if current is None else same_team
        return allowed and await self.investigator.owns_team(team, user)

    async def set_channel(
        self, *, tenant: str, channel_id: str, service_url: str, bot_id: str, team: str = ""
    ) -> None:
        channel = HelpdeskChannel(channel_id, service_url, bot_id, team)
        await set_helpdesk_channel(self.store, tenant, channel)
        # Tickets that waited for a channel go out now.
        for ticket in await self.tickets.find(open_only=True, limit=200):
            if (
                ticket.tenant.lower() == tenant.lower()
                and await get_ticket_card(self.store, ticket.number) is None
            ):
                key = f"ticket:{ticket.number}:post:{channel_id}"
                await enqueue(self.store, key, PostTicket(number=ticket.number))
        self.kick()

    async def act(
        self, *, verb: str, data: dict[str, Any], agent: str, agent_name: str, notice: str | None = None
    ) -> Card | str:
        """An agent pressed a button on a ticket card: the new card (with `notice`, when it changed), or a
        message when nothing changed."""
        number, version = data.get("ticket"), data.get("version")
        if not isinstance(number, int) or not isinstance(version, int):
            return "That ticket card is missing its ticket number. Ask “open tickets” for a fresh one."
        ticket = await self.tickets.get(number)
        if ticket is None:
            return f"There is no ticket SD-{number}."
        if ticket.version != version:
            who = ticket.changed_by or "someone"
            return await self._agent_card(
                ticket, notice=f"{who} changed this ticket just before you; here it is now."
            )
        try:
            changed = await self._change(verb, ticket, data, agent, agent_name)
            if changed is None:
                return "I don't know that ticket button."
        except tickets.TransitionError as exc:
            return await self._agent_card(ticket, notice=str(exc))
        except BackendError as exc:
            return await self._agent_card(
                ticket, notice=f"Couldn't re-run the diagnosis: {exc.service} didn't answer."
            )
        try:
            saved = await self.tickets.save(changed, expected_version=ticket.version)
        except TicketChanged as conflict:
            who = conflict.current.changed_by or "someone"
            return await self._agent_card(
                conflict.current, notice=f"{who} changed this ticket just before you."
            )
        await self._announce(saved, verb, agent_name)
        return await self._agent_card(saved, notice=notice)

    async def _agent_card(
        self, ticket: Ticket, *, notice: str | None = None, notice_color: str = "Warning"
    ) -> Card:
        """What an agent's press answers: the agent view of the channel's card (it keeps its refresh)."""
        return await channel_ticket_card(
            self.store,
            ticket,
            for_agents=True,
            notice=notice,
            notice_color=notice_color,
            fixes=await self._fixes(ticket),
        )

    async def _fixes(self, ticket: Ticket) -> Sequence[FixLine]:
        return await self.fix_history(ticket.user_aad) if self.fix_history is not None else ()

    async def agent_view(
        self, number: int | None, *, notice: str | None = None, notice_color: str = "Warning"
    ) -> Card | str:
        """The agent view of ticket `number`, with `notice` on it (e.g. how an agent's fix went)."""
        if not isinstance(number, int):
            return "That ticket card is missing its ticket number. Ask “open tickets” for a fresh one."
        ticket = await self.tickets.get(number)
        if ticket is None:
            return f"There is no ticket SD-{number}."
        return await self._agent_card(ticket, notice=notice, notice_color=notice_color)

    async def fixed(self, number: int | None, key: str) -> None:
        """A fix was made for ticket `number`'s person (application `key`): the channel's card shows it to
        everyone (queued once per application)."""
        if isinstance(number, int) and await self.tickets.get(number) is not None:
            await enqueue(self.store, f"ticket:{number}:fix:{key}:card", UpdateTicketCard(number=number))
            self.kick()

    async def rerun(self, number: int | None, *, agent: str, agent_name: str, notice: str) -> Card | str:
        """Re-run ticket `number`'s diagnosis now (as Re-run does, on the ticket as it is) and answer with
        the agent view, `notice` on it: e.g. when a fix no longer applies."""
        if not isinstance(number, int):
            return "That ticket card is missing its ticket number. Ask “open tickets” for a fresh one."
        ticket = await self.tickets.get(number)
        if ticket is None:
            return f"There is no ticket SD-{number}."
        return await self.act(
            verb="ticket_rerun",
            data={"ticket": number, "version": ticket.version},
            agent=agent,
            agent_name=agent_name,
            notice=notice,
        )

    async def view(
        self, number: int | None, *, viewer: str, tenant: str | None, conversation: str
    ) -> Card | str:
        """The ticket card's refresh (Universal Actions, automatic for the agents, or by hand): the agent
        view for an agent, the read-only view for anyone else who may see the ticket: its own person, or a
        member of the tenant's helpdesk channel (where the card is) asking from there."""
        if not isinstance(number, int):
            return "That ticket card is missing its ticket number. Ask “open tickets” for a fresh one."
        ticket = await self.tickets.get(number)
        if self.is_agent(viewer):
            return f"There is no ticket SD-{number}." if ticket is None else await self._agent_card(ticket)
        if ticket is None or not await self._may_see(ticket, viewer, tenant, conversation):
            return "Only helpdesk agents and the ticket's own person can see it."
        return await channel_ticket_card(self.store, ticket, fixes=await self._fixes(ticket))

    async def _may_see(self, ticket: Ticket, viewer: str, tenant: str | None, conversation: str) -> bool:
        if viewer.lower() == ticket.user_aad.lower():
            return True
        if not tenant or tenant.lower() != ticket.tenant.lower():
            return False
        channel = await self.channel(tenant)
        return channel is not None and conversation.split(";")[0] == channel.channel_id

    async def note_agent(self, tenant: str | None, user: str | None, teams_id: str | None) -> None:
        """Keep an agent's Teams user id (MRI) as seen in an activity from them: ticket cards' refresh
        names agents by it. Nothing is written when it is known already, or `user` is no agent."""
        if not (tenant and user and teams_id and self.is_agent(user)):
            return
        known = await get_agent_ids(self.store, tenant)
        if known.get(user.lower()) == teams_id:
            return
        kept = {k: v for k, v in known.items() if k in self.agents}  # agents no longer configured go
        await set_agent_ids(self.store, tenant, {**kept, user.lower(): teams_id})

    async def _change(
        self, verb: str, ticket: Ticket, data: dict[str, Any], agent: str, agent_name: str
    ) -> Ticket | None:
        """The ticket as `verb` changes it; None for a verb no ticket button has.

        Raises:
            TransitionError: the change doesn't apply to the ticket as it is.
            BackendError: a re-run's diagnosis could not run.
        """
        if verb == "ticket_assign":
            return tickets.assign(ticket, agent, agent_name)
        if verb == "ticket_resolve":
            return tickets.resolve(ticket, agent_name, str(data.get("note") or ""))
        if verb == "ticket_reopen":
            return tickets.reopen(ticket, agent_name)
        if verb == "ticket_rerun":
            report = await self.investigator.run(
                ticket.user_aad,
                ticket.record_id,
                ticket.record_type,  # type: ignore[arg-type]
                reader=agent,  # an agent sees what the agent may see
            )
            return tickets.rerun(ticket, agent_name, report.to_dict())
        return None

    async def _announce(self, ticket: Ticket, verb: str, agent_name: str) -> None:
        """Queue the channel card's update (for everyone) and the user's notice: once per ticket version."""
        key = f"ticket:{ticket.number}:v{ticket.version}"
        await enqueue(self.store, f"{key}:card", UpdateTicketCard(number=ticket.number))
        text = _NOTICES[verb].format(key=ticket.key, who=agent_name)
        if ticket.resolution and verb == "ticket_resolve":
            text += f" Note: {ticket.resolution}"
        news = NotifyUser(tenant=ticket.tenant, user=ticket.user_aad, text=text, number=ticket.number)
        await enqueue(self.store, f"{key}:notify", news)
        self.kick()

    async def remember_diagnosis(self, chat: Chat, shown: Shown) -> None:
        """`shown` is the last diagnosis shown in `chat`: "talk to a human" there carries it for a while."""
        await set_last_diagnosis(self.store, chat, shown, at=self.clock())

    async def forget_diagnosis(self, chat: Chat) -> None:
        """`chat` was last shown something that is no diagnosis: no earlier one is carried from now on."""
        await forget_last_diagnosis(self.store, chat)

    async def last_diagnosis(self, chat: Chat) -> Shown | None:
        """The last diagnosis shown in `chat`, unless there was none or it is too old to hand on."""
        return await get_last_diagnosis(self.store, chat, at=self.clock())

    async def remember_conversation(self, tenant: str, user: str, reference: dict[str, Any]) -> None:
        """Keep how to reach `user` in their 1:1 chat: ticket news and sync notices go there (and, for an
        agent, their Teams user id: ticket cards refresh to the agent view for it)."""
        await self.store.save_reference(tenant, user, reference)
        person = reference.get("user")
        await self.note_agent(tenant, user, person.get("id") if isinstance(person, dict) else None)

    async def forget_conversation(self, tenant: str, user: str) -> None:
        """`user` removed the app: nothing more is sent to their chat."""
        await self.store.delete_reference(tenant, user)

    async def mute(self, user: str) -> None:
        """Send `user` no more proactive sync notices (the sweep reads it)."""
        await set_muted(self.store, user, since=now())

    async def watch(self, user: str, causes: Sequence[str]) -> None:
        """Tell `user` once these causes are fixed (the sweep re-checks them)."""
        await set_watch(self.store, user, causes, since=now())

    async def list_for(self, user: str) -> Card:
        mine = await self.tickets.find(user_aad=user, limit=10)
        return to_dict(build_ticket_list_card(mine, title="Your tickets"))

    async def list_open(self) -> Card:
        return to_dict(
            build_ticket_list_card(await self.tickets.find(open_only=True, limit=20), title="Open tickets")
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)
