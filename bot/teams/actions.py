"""Card buttons (Universal Actions): a table from verb to (payload type, handler), and one dispatcher.

The dispatcher checks, once for every verb, the tenant, the presser's identity, who may press it (agents
only, the card's own person alone, or the card's own person and agents) and the payload's shape; a handler
only acts. Adding a verb is one entry in `ACTIONS` and one function.

A card's Universal Actions `refresh` arrives the same way, with `trigger: "automatic"` when Teams asked on
its own: only a verb marked `refresh` answers that (it shows, never changes, anything), and it answers
each person with their own view (the ticket card: agents the agent view, everyone else the read-only one).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from botbuilder.schema import AdaptiveCardInvokeResponse, AdaptiveCardInvokeValue

from bot.teams import fixes, messages
from bot.teams.diagnoses import check
from bot.teams.escalations import escalate
from bot.teams.payloads import (
    Check,
    Escalate,
    EscalateSend,
    FixPress,
    FixUndo,
    Mute,
    Payload,
    Pick,
    TicketFixPress,
    TicketPress,
    TicketRefresh,
    Unfit,
    Watch,
)
from bot.teams.turn import Card, Turn
from cards.common import CARD_CONTENT_TYPE, to_dict
from cards.ticket import REFRESH_VERB, build_escalate_card

__all__ = ["ACTIONS", "Action", "Press", "dispatch", "message_response"]

log = logging.getLogger(__name__)
P = TypeVar("P", bound=Payload)
Reply = Card | str  # a card replaces the one pressed; a text is shown beside it


@dataclass(frozen=True)
class Press:
    """One button press: the turn, and who pressed (their Entra object id, checked by the dispatcher)."""

    turn: Turn
    user: str


@dataclass(frozen=True)
class Action(Generic[P]):
    """What a verb takes (`payload`, parsed before `run` sees it) and does.

    Args:
        agents_only: only helpdesk agents may press it; else the card's own person, or an agent for them.
        own_only: only the card's own person may press it, agents included (their own fixes: Dataverse
            checks the person's privileges, as them).
        without_helpdesk: the answer when no helpdesk is set up (None: the verb needs none).
        without_fixer: the answer when one-click fixes are not set up (None: the verb needs none).
        refresh: a card's refresh (it only shows): the one kind Teams may send with trigger "automatic".
    """

    payload: type[P]
    run: Callable[[Press, P], Awaitable[Reply]]
    agents_only: bool = False
    own_only: bool = False
    without_helpdesk: str | None = None
    without_fixer: str | None = None
    refresh: bool = False


# --- the handlers ----------------------------------------------------------------------------------------


async def _check(press: Press, data: Check) -> Reply:
    services = press.turn.services
    subject = data.about(press.user)
    return await check(
        services,
        subject,
        data.record,
        data.record_type,
        reader=press.user,
        show_all=data.show_all,
        turn=press.turn,  # what the chat was shown last: "talk to a human" carries it
    )


async def _escalate_form(press: Press, data: Escalate) -> Reply:
    form = build_escalate_card(
        user=data.about(press.user), record=data.record, record_type=data.record_type, subject=data.subject
    )
    return to_dict(form)


async def _escalate_send(press: Press, data: EscalateSend) -> Reply:
    return await escalate(press.turn, data.about(press.user), data.record, data.record_type, data.comment)


async def _mute(press: Press, data: Mute) -> Reply:
    assert press.turn.services.helpdesk is not None  # the dispatcher answers `without_helpdesk` first
    await press.turn.services.helpdesk.mute(press.user)
    return messages.MUTED


async def _watch(press: Press, data: Watch) -> Reply:
    assert press.turn.services.helpdesk is not None
    await press.turn.services.helpdesk.watch(press.user, [data.cause] if data.cause else [])
    return messages.WATCHING


def _ticket(verb: str) -> Action[TicketPress]:
    """An agent's button on a ticket card: the helpdesk acts on the ticket (it knows each ticket verb)."""

    async def run(press: Press, data: TicketPress) -> Reply:
        helpdesk = press.turn.services.helpdesk
        assert helpdesk is not None  # agents only: there are agents only with a helpdesk
        name = press.turn.name or press.user
        return await helpdesk.act(verb=verb, data=data.data(), agent=press.user, agent_name=name)

    return Action(TicketPress, run, agents_only=True)


async def _ticket_view(press: Press, data: TicketRefresh) -> Reply:
    """The ticket card's refresh: the agent view for an agent, the read-only view for anyone else."""
    helpdesk = press.turn.services.helpdesk
    assert helpdesk is not None
    conversation = press.turn.activity.conversation
    return await helpdesk.view(
        data.ticket,
        viewer=press.user,
        tenant=press.turn.tenant,
        conversation=(conversation.id if conversation else None) or "",
    )


def _fix(
    run: Callable[[Turn, str, P], Awaitable[Reply]], payload: type[P], *, agents: bool = False
) -> Action[P]:
    """A fix button (`fixes`): Fix it for me, the card's own person's alone (the fixes they may make
    themselves: `payloads.PERSON_FIXES`), or a ticket card's Fix, agents' alone."""

    async def handler(press: Press, data: P) -> Reply:
        return await run(press.turn, press.user, data)

    return Action(payload, handler, agents_only=agents, own_only=not agents, without_fixer=messages.FIXES_OFF)


ACTIONS: Mapping[str, Action[Any]] = {
    "recheck": Action(Check, _check),
    "details": Action(Check, _check),
    "check_mailbox": Action(Check, _check),
    "pick": Action(Pick, _check),
    "escalate": Action(Escalate, _escalate_form, without_helpdesk=messages.ESCALATE_SOON),
    "escalate_send": Action(EscalateSend, _escalate_send, without_helpdesk=messages.ESCALATE_SOON),
    "mute": Action(Mute, _mute, without_helpdesk=messages.UNKNOWN_ACTION),
    "watch": Action(Watch, _watch, without_helpdesk=messages.UNKNOWN_ACTION),
    "ticket_assign": _ticket("ticket_assign"),
    "ticket_resolve": _ticket("ticket_resolve"),
    "ticket_reopen": _ticket("ticket_reopen"),
    "ticket_rerun": _ticket("ticket_rerun"),
    REFRESH_VERB: Action(TicketRefresh, _ticket_view, without_helpdesk=messages.UNKNOWN_ACTION, refresh=True),
    "fix_offer": _fix(fixes.offer, FixPress),
    "fix_apply": _fix(fixes.apply, FixPress),
    "fix_undo": _fix(fixes.undo, FixUndo),
    "ticket_fix_offer": _fix(fixes.ticket_offer, TicketFixPress, agents=True),
    "ticket_fix_apply": _fix(fixes.ticket_apply, TicketFixPress, agents=True),
}


# --- the dispatcher --------------------------------------------------------------------------------------


async def dispatch(turn: Turn, invoke_value: AdaptiveCardInvokeValue) -> AdaptiveCardInvokeResponse:
    """Answer one button press. Card data is never logged: anyone could have written it."""
    action = invoke_value.action if isinstance(invoke_value.action, dict) else {}
    verb = str(action.get("verb") or "")
    data = action.get("data")
    entry = ACTIONS.get(verb)
    if _automatic(turn) and not (entry is not None and entry.refresh):
        entry = None  # Teams refreshes on its own only what shows: nothing is done unasked
    reply = await _reply(turn, entry, data if isinstance(data, dict) else {})
    return message_response(reply) if isinstance(reply, str) else _card_response(reply)


async def _reply(turn: Turn, entry: Action[Any] | None, data: Mapping[str, Any]) -> Reply:
    user = turn.user
    if not turn.tenant_allowed():
        return messages.TENANT_REFUSED
    if not user:
        return messages.NO_IDENTITY
    if entry is None:
        return messages.UNKNOWN_ACTION
    agent = turn.services.is_agent(user)
    if entry.agents_only and not agent:
        return messages.AGENTS_ONLY
    try:
        payload = entry.payload.parse(data)
    except Unfit:
        return messages.UNKNOWN_ACTION
    someone_elses = payload.user is not None and payload.user.lower() != user.lower()
    if someone_elses and (entry.own_only or not agent):
        log.warning("turn %s: %s pressed a button on someone else's card", turn.activity.id, user)
        return messages.NOT_YOURS
    if entry.without_helpdesk is not None and turn.services.helpdesk is None:
        return entry.without_helpdesk
    if entry.without_fixer is not None and turn.services.fixer is None:
        return entry.without_fixer
    return await entry.run(Press(turn, user), payload)


def _automatic(turn: Turn) -> bool:
    """Teams sent this invoke on its own (a card's refresh), not for a press: `value.trigger`."""
    value = turn.activity.value
    return isinstance(value, dict) and value.get("trigger") == "automatic"


def _card_response(card: Card) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=card)


class _MessageInvokeResponse(AdaptiveCardInvokeResponse):  # type: ignore[misc]
    """A Universal Action answer that shows a message and leaves the card as it is.

    Its `value` is a string, which the SDK's model (typed as a dict) can't serialise.
    """

    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {
        **AdaptiveCardInvokeResponse._attribute_map,
        "value": {"key": "value", "type": "str"},
    }


def message_response(text: str) -> AdaptiveCardInvokeResponse:
    """The invoke answer that shows `text` and leaves the card as it is."""
    return _MessageInvokeResponse(
        status_code=200, type="application/vnd.microsoft.activity.message", value=text
    )
