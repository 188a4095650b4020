"""One-click fixes in Teams: **Fix it for me** (on the person's diagnosis card: their own filters, and Test &
Enable of their own mailbox), an agent's **Fix** (on a ticket card), the confirmation card, Confirm and
Undo. It converts and routes; the fix service (`bot.fixing.Fixer`) derives, records and writes.

Card data carries only whose fix, the record, its type and the fix id: the confirmation card is made from
a diagnosis run on the press, and Confirm has the service derive the fix again, writing as the presser.
Who may press is the dispatcher's (`actions`: the card's own person alone for Fix it for me, agents alone
for a ticket's Fix) and `bot.fixing.may_apply`'s, on the fix derived; what they may change is Dataverse's
(a 403 becomes a refusal card, never an error).

Every answer comes within the turn's budget: a write still running then is left to finish and the card
says so, with a button that shows how it went (applying twice changes once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

from bot.diagnosis import Report
from bot.diagnosis.fixes import Fix
from bot.errors import BackendError, InputError, Throttled
from bot.fixing import Applied, Fixer, NotAllowed, NotApplicable, Refused, may_apply
from bot.helpdesk.tickets import CLOSED
from bot.teams import messages
from bot.teams.diagnoses import check, diagnosis_card, reason, remember
from bot.teams.escalations import escalate_refused_fix
from bot.teams.payloads import FixPress, FixUndo, TicketFixPress
from bot.teams.turn import Card, Turn
from cards.common import LINE, NAME, clip, to_dict
from cards.fix import (
    RetryVerb,
    build_fix_applied_card,
    build_fix_confirm_card,
    build_fix_failed_card,
    build_fix_refused_card,
    minutes,
    person_title,
)

__all__ = ["apply", "offer", "ticket_apply", "ticket_offer", "undo"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Reply = Card | str
Retry = tuple[RetryVerb, dict[str, Any]]  # the press a "Try again" button sends again

# Writes that outlived their turn's budget, kept until they finish (a task nobody holds may be collected).
_unfinished: set[asyncio.Task[object]] = set()


class _StillRunning(Exception):
    """The fix service didn't answer within the turn's budget; it goes on in the background."""


async def _within(turn: Turn, work: Awaitable[T]) -> T:
    """`work`'s answer within the turn's budget (Teams wants an invoke answered within 15 s). Past it the
    work is not cancelled (a write must not stop halfway): it finishes unseen, and `_StillRunning` says so."""
    task: asyncio.Task[T] = asyncio.ensure_future(work)
    try:
        return await asyncio.wait_for(asyncio.shield(task), turn.services.budget)
    except TimeoutError:
        _unfinished.add(task)
        task.add_done_callback(_finished)
        raise _StillRunning from None


def _finished(task: asyncio.Task[object]) -> None:
    _unfinished.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("a fix finished after its turn with an error: %r", task.exception())


def _fixer(turn: Turn) -> Fixer:
    fixer = turn.services.fixer
    assert fixer is not None  # the dispatcher answers `without_fixer` first
    return fixer


def _recheck_after(fixer: Fixer) -> float | None:
    return fixer.recheck_after[0] if fixer.recheck_after else None


# --- the person's own fix ----------------------------------------------------------------------------


async def offer(turn: Turn, presser: str, data: FixPress) -> Reply:
    """Fix it for me: the confirmation card, from a diagnosis run now (a fix no longer proposed gets that
    diagnosis instead, or, when it was made already, how it went)."""
    fixer = _fixer(turn)
    user = data.about(presser)
    try:
        report, fixes = await _within(turn, fixer.proposals(user, data.record, data.record_type))
    except (_StillRunning, BackendError) as exc:
        return _unreachable(exc, ("fix_offer", data.data()), writing=False)
    except InputError:
        return messages.UNKNOWN_ACTION
    person = (report.user.aad_object_id or "").lower()
    mine = (
        f
        for f in fixes
        if f.id == data.fix and may_apply(f, by=presser.lower(), person=person, is_agent=False)
    )
    fix = next(mine, None)
    if fix is None:
        earlier = await fixer.done_before(data.fix, report)
        if earlier is not None:
            return _applied_card(fixer, earlier, presser)
        await remember(turn, user, data.record_type, report)
        return diagnosis_card(report, data.record_type, viewer=presser, notice=messages.FIX_NOT_APPLICABLE)
    return _confirm(fix, report, data, cancel=data.check())


async def apply(turn: Turn, presser: str, data: FixPress) -> Reply:
    """Confirm: the service derives the fix again and writes it as the presser; the card shows how it went."""
    fixer = _fixer(turn)
    user = data.about(presser)
    try:
        # As the person, whoever they are: Fix it for me offers only what a person may make themselves.
        work = fixer.apply(user, data.record, data.record_type, data.fix, by=presser, is_agent=False)
        applied = await _within(turn, work)
    except _StillRunning as exc:
        return _unreachable(exc, ("fix_apply", data.data()))
    except NotAllowed:
        return messages.NOT_YOURS
    except NotApplicable as exc:
        if exc.report is not None:  # the diagnosis it was decided on: shown, not run again (Teams' limit)
            await remember(turn, user, data.record_type, exc.report)
            return diagnosis_card(
                exc.report, data.record_type, viewer=presser, notice=messages.FIX_NOT_APPLICABLE
            )
        return await check(
            turn.services,
            user,
            data.record,
            data.record_type,
            reader=presser,
            turn=turn,
            notice=messages.FIX_NOT_APPLICABLE,
        )
    except Refused as exc:
        fix = await _refused_fix(fixer, user, data)
        return await _refused(turn, user, data, fix, exc.detail or str(exc), exc.report)
    except InputError:
        return messages.UNKNOWN_ACTION
    except BackendError as exc:
        return _unreachable(exc, ("fix_apply", data.data()))
    return _outcome(fixer, applied, presser, ("fix_apply", data.data()))


async def undo(turn: Turn, presser: str, data: FixUndo) -> Reply:
    """Undo a filter fix: the service turns the filter off again, as the person (only they may)."""
    fixer = _fixer(turn)
    retry: Retry = ("fix_undo", {"user": data.user, "applied": data.key})
    try:
        applied = await _within(turn, fixer.undo(data.key, by=presser))
    except _StillRunning as exc:
        return _unreachable(exc, retry)
    except NotAllowed:
        return messages.NOT_YOURS
    except NotApplicable:
        return messages.FIX_UNDO_NOTHING
    except Refused as exc:
        earlier = await fixer.get(data.key)
        if earlier is None:
            return messages.FIX_UNDO_NOTHING
        card = build_fix_refused_card(
            earlier.fix,
            message=exc.detail or str(exc),
            helpdesk=messages.FIX_ASK_ADMIN,
            check=_check(earlier),
        )
        return to_dict(card)
    except InputError:
        return messages.UNKNOWN_ACTION
    except BackendError as exc:
        return _unreachable(exc, retry)
    return _applied_card(fixer, applied, presser)


# --- an agent's fix, from a ticket card -----------------------------------------------------------------


async def ticket_offer(turn: Turn, presser: str, data: TicketFixPress) -> Reply:
    """An agent's Fix: the confirmation card, from a diagnosis run now (one that no longer proposes it
    becomes the ticket's diagnosis, with a notice)."""
    fixer = _fixer(turn)
    user = data.about(presser)
    refused = await _ticket_refusal(turn, data, user)
    if refused is not None:
        return refused
    try:
        report, fixes = await _within(turn, fixer.proposals(user, data.record, data.record_type))
    except (_StillRunning, BackendError) as exc:
        return _unreachable(exc, ("ticket_fix_offer", data.data()), writing=False)
    except InputError:
        return messages.UNKNOWN_ACTION
    person = (report.user.aad_object_id or "").lower()
    agent = turn.services.is_agent(presser)  # True: the dispatcher let only agents through
    theirs = (
        f
        for f in fixes
        if f.id == data.fix
        and f.who == "agent"
        and may_apply(f, by=presser.lower(), person=person, is_agent=agent)
    )
    fix = next(theirs, None)
    if fix is None:
        return await _rerun(turn, presser, data, messages.FIX_NOT_APPLICABLE)
    return _confirm(fix, report, data, cancel={"ticket": data.ticket}, whose="theirs")


async def ticket_apply(turn: Turn, presser: str, data: TicketFixPress) -> Reply:
    """An agent's Confirm: written as the agent; the ticket card (agent view) says how it went."""
    fixer = _fixer(turn)
    user = data.about(presser)
    retry: Retry = ("ticket_fix_apply", data.data())
    agent = turn.services.is_agent(presser)  # True: the dispatcher let only agents through
    refused = await _ticket_refusal(turn, data, user)
    if refused is not None:
        return refused
    try:
        work = fixer.apply(user, data.record, data.record_type, data.fix, by=presser, is_agent=agent)
        applied = await _within(turn, work)
    except _StillRunning as exc:
        return _unreachable(exc, retry)
    except NotApplicable:
        return await _rerun(turn, presser, data, messages.FIX_NOT_APPLICABLE)
    except NotAllowed:
        return messages.NOT_YOURS
    except Refused as exc:
        fix = await _refused_fix(fixer, user, data)
        return await _ticket_refused(turn, data, fix, exc.detail or str(exc))
    except InputError:
        return messages.UNKNOWN_ACTION
    except BackendError as exc:
        return _unreachable(exc, retry)
    if applied.state != "applied" or turn.services.helpdesk is None or data.ticket is None:
        return _outcome(fixer, applied, presser, retry)
    helpdesk = turn.services.helpdesk
    await helpdesk.fixed(data.ticket, applied.key)
    after = _recheck_after(fixer)
    notice = messages.FIX_AGENT_DONE.format(
        title=clip(applied.fix.title, LINE),
        when=minutes(after) if after is not None else "a while",
        person=await _person(turn, data.ticket),
    )
    return await helpdesk.agent_view(data.ticket, notice=notice, notice_color="Good")


# --- the cards ----------------------------------------------------------------------------------------


def _confirm(
    fix: Fix,
    report: Report,
    data: FixPress,
    *,
    cancel: dict[str, Any],
    whose: Literal["yours", "theirs"] = "yours",
) -> Card:
    subject = report.record.subject if report.record else None
    card = build_fix_confirm_card(
        fix,
        data=data.data(),
        cancel=cancel,
        record_type=data.record_type,
        subject=subject,
        mailbox=report.user.email,
        whose=whose,
    )
    return to_dict(card)


def _check(applied: Applied) -> dict[str, Any]:
    """Re-check's data: the diagnosis the fix was for."""
    return {"user": applied.user, "record": applied.record, "type": applied.record_type}


def _applied_card(fixer: Fixer, applied: Applied, viewer: str) -> Card:
    # Made by someone other than its person: an agent, from a ticket card (never an Entra id on a card).
    by_name = None if applied.by.lower() == applied.user.lower() else "the helpdesk"
    card = build_fix_applied_card(
        applied,
        record_type=applied.record_type,
        recheck_after=_recheck_after(fixer),
        check=_check(applied),
        viewer=viewer,
        by_name=by_name,
    )
    return to_dict(card)


def _outcome(fixer: Fixer, applied: Applied, viewer: str, retry: Retry) -> Reply:
    """The card of an application, by its state: made (a second press gets the first one's, `first`
    False), or still being made by another press."""
    if applied.state == "applying":
        return to_dict(build_fix_failed_card(applied.fix, reason="", retry=retry, in_progress=True))
    return _applied_card(fixer, applied, viewer)


def _unreachable(exc: Exception, retry: Retry, *, writing: bool = True) -> Card:
    """Dataverse didn't answer (or not within the turn): say so, with a button to press again. A write
    past the budget goes on ("still working"); a read past it is just late."""
    if isinstance(exc, _StillRunning) and writing:
        return to_dict(build_fix_failed_card(None, reason="", retry=retry, in_progress=True))
    why = reason(exc) if isinstance(exc, BackendError) else messages.FIX_SLOW
    return to_dict(build_fix_failed_card(None, reason=why, retry=retry, throttled=isinstance(exc, Throttled)))


async def _refused(
    turn: Turn, user: str, data: FixPress, fix: Fix | None, detail: str, report: Report | None = None
) -> Reply:
    """Dataverse refused the person's own fix: the helpdesk is told (a ticket, the refusal as its comment,
    and the diagnosis the fix was derived from, not a second one) and the card says so; with no helpdesk,
    who to ask."""
    title = person_title(fix) if fix is not None else data.fix
    if turn.services.helpdesk is not None:
        comment = messages.FIX_REFUSED_TICKET.format(title=title, detail=detail)
        return await escalate_refused_fix(turn, user, data.record, data.record_type, comment, report=report)
    shown = fix if fix is not None else Fix(data.fix, "", title, "self", ())
    card = build_fix_refused_card(shown, message=detail, helpdesk=messages.FIX_ASK_ADMIN, check=data.check())
    return to_dict(card)


async def _ticket_refused(turn: Turn, data: TicketFixPress, fix: Fix | None, detail: str) -> Reply:
    """Dataverse refused an agent's fix: the ticket card says what it said (it names the privilege)."""
    # The title short, so that Dataverse's words (the privilege it names) fit in the notice.
    notice = messages.FIX_AGENT_REFUSED.format(
        title=clip(fix.title if fix else data.fix, NAME), detail=detail
    )
    helpdesk = turn.services.helpdesk
    if helpdesk is None or data.ticket is None:
        shown = fix if fix is not None else Fix(data.fix, "", data.fix, "agent", ())
        card = build_fix_refused_card(
            shown, message=detail, helpdesk=None, check=data.check(), whose="theirs"
        )
        return to_dict(card)
    return await helpdesk.agent_view(data.ticket, notice=notice, notice_color="Attention")


async def _rerun(turn: Turn, presser: str, data: TicketFixPress, notice: str) -> Reply:
    """The ticket's diagnosis, run now, on its card: what a fix that no longer applies leaves to do."""
    helpdesk = turn.services.helpdesk
    if helpdesk is None or data.ticket is None:
        return await check(
            turn.services, data.about(presser), data.record, data.record_type, reader=presser, notice=notice
        )
    name = turn.name or presser
    return await helpdesk.rerun(data.ticket, agent=presser, agent_name=name, notice=notice)


async def _ticket_refusal(turn: Turn, data: TicketFixPress, user: str) -> str | None:
    """Why an agent's Fix may not go ahead on the ticket it names, or None. A ticket card always names its
    open ticket, about its person and record: a card without one, or saying otherwise, is forged (the fix
    would be made on no ticket, or listed on another person's); one of a resolved ticket is stale. Read
    from the store only."""
    helpdesk = turn.services.helpdesk
    if helpdesk is None or data.ticket is None:
        return messages.UNKNOWN_ACTION
    ticket = await helpdesk.tickets.get(data.ticket)
    if ticket is None:
        return messages.UNKNOWN_ACTION
    same_record = (ticket.record_id or "").lower() == (data.record or "").lower()
    if ticket.user_aad.lower() != user.lower() or not same_record:
        return messages.UNKNOWN_ACTION
    if ticket.status == CLOSED:
        return messages.TICKET_CLOSED_FIX.format(key=ticket.key)
    return None


async def _person(turn: Turn, number: int) -> str:
    """The ticket's person, by name, for the agent's notice."""
    helpdesk = turn.services.helpdesk
    ticket = await helpdesk.tickets.get(number) if helpdesk is not None else None
    return clip(ticket.user_name, NAME) if ticket is not None and ticket.user_name else "the person"


# --- what the service kept ------------------------------------------------------------------------------


async def _refused_fix(fixer: Fixer, user: str, data: FixPress) -> Fix | None:
    """The fix Dataverse just refused, as the service recorded it (its title names what it changes)."""
    for applied in await fixer.history(user):
        if applied.fix.id == data.fix and applied.state == "refused":
            return applied.fix
    return None
