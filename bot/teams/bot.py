"""The Teams activity handler: intent -> diagnosis -> card. It converts and routes; the core decides."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    ChannelAccount,
)

from bot.clients.http import deadline
from bot.diagnosis import RECORD_TYPES, RecordType, Report
from bot.errors import (
    AmbiguousRecordError,
    BackendError,
    BackendRefused,
    InputError,
    StoreError,
    Throttled,
)
from bot.helpdesk.desk import MAX_OPEN_TICKETS, EscalationRefused, Helpdesk
from bot.ids import is_id
from bot.investigation import Investigator
from bot.teams import messages
from bot.teams.intents import MENTION, Intent, classify
from bot.teams.records import best_matches, subject_words
from cards.common import CARD_CONTENT_TYPE, to_dict
from cards.conversation import (
    PickerItem,
    build_checklist_card,
    build_help_card,
    build_picker_card,
    build_welcome_card,
)
from cards.diagnosis import build_diagnosis_card
from cards.ticket import build_escalate_card, build_ticket_card

__all__ = ["SyncDoctorBot"]

log = logging.getLogger(__name__)
Card = dict[str, Any]
_REFERENCE_CACHE = 50_000  # people whose stored conversation this process remembers
TYPING_AFTER = 0.3  # seconds: a quicker answer needs no typing indicator (and saves a connector call)
REMEMBER_WAIT = 2.0  # seconds a turn waits, after answering, for its conversation to be stored


def _when(record_start: datetime | None) -> str | None:
    return record_start.strftime("%a %d %b %H:%M UTC") if record_start else None


class SyncDoctorBot(TeamsActivityHandler):  # type: ignore[misc]
    """Answers questions about records that don't reach Outlook, in personal chat, group chats and channels.

    Args:
        investigator: runs diagnoses against Dataverse and Graph.
        allowed_tenants: tenant ids allowed to use the bot (empty: any).
        budget: seconds for one turn's work; Teams wants an answer within 15 s.
    """

    def __init__(
        self,
        investigator: Investigator,
        *,
        allowed_tenants: frozenset[str] = frozenset(),
        budget: float = 11.0,
        helpdesk: Helpdesk | None = None,
    ):
        super().__init__()
        self.investigator = investigator
        self.helpdesk = helpdesk
        self.allowed_tenants = allowed_tenants
        self.budget = budget
        self._saved_references: dict[str, str] = {}  # what this process last stored for each person
        self._background: set[asyncio.Future[None]] = set()
        self._routes: dict[str, Callable[[TurnContext, Intent, str], Awaitable[None]]] = {
            "diagnose": self._diagnose,
            "check_mailbox": self._diagnose,
            "escalate": self._escalate_text,
            "help": self._reply_card(lambda: to_dict(build_help_card())),
            "greeting": self._greet,
            "thanks": self._reply_text(messages.THANKS),
            "out_of_scope": self._reply_text(messages.OUT_OF_SCOPE),
        }

    # --- plumbing -------------------------------------------------------------------------------------

    def _tenant_allowed(self, context: TurnContext) -> bool:
        if _tenants_disagree(context):
            return False
        return not self.allowed_tenants or (_tenant(context) or "") in self.allowed_tenants

    @staticmethod
    async def _send_card(context: TurnContext, card: Card) -> None:
        await context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))

    def _reply_text(self, text: str) -> Callable[[TurnContext, Intent, str], Awaitable[None]]:
        async def reply(context: TurnContext, intent: Intent, message: str) -> None:
            await context.send_activity(MessageFactory.text(text))

        return reply

    def _reply_card(self, build: Callable[[], Card]) -> Callable[[TurnContext, Intent, str], Awaitable[None]]:
        async def reply(context: TurnContext, intent: Intent, message: str) -> None:
            await self._send_card(context, build())

        return reply

    async def _greet(self, context: TurnContext, intent: Intent, message: str) -> None:
        await self._send_card(context, to_dict(build_welcome_card(context.activity.from_property.name)))

    # --- every turn: remember how to reach the person later --------------------------------------------

    async def on_turn(self, turn_context: TurnContext) -> None:
        if not self._tenant_allowed(turn_context):
            await self._refuse_tenant(turn_context)
            return
        # Remembering runs beside the turn: a diagnosis needs no store, so a store that is down or locked
        # must not hold the answer up.
        remembering = asyncio.ensure_future(self._remember_conversation(turn_context))
        try:
            await super().on_turn(turn_context)
        except StoreError as exc:
            log.error("turn %s: the store failed: %s", turn_context.activity.id, exc)
            await turn_context.send_activity(messages.STORE_DOWN)
        await self._remembered(turn_context, remembering)

    async def _remembered(self, context: TurnContext, remembering: asyncio.Future[None]) -> None:
        """Wait a little for the conversation to be stored; say so when it couldn't be."""
        done, _ = await asyncio.wait([remembering], timeout=REMEMBER_WAIT)
        if not done:  # still waiting on the store: let it finish (or fail, logged) after the turn
            self._background.add(remembering)
            remembering.add_done_callback(self._forget_background)
            return
        error = remembering.exception()
        if error is None:
            return
        log.error("turn %s: could not store the conversation: %s", context.activity.id, error)
        if context.activity.type == ActivityTypes.message:
            await context.send_activity(messages.CONVERSATION_NOT_KEPT)

    def _forget_background(self, task: asyncio.Future[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not store a conversation: %s", task.exception())

    async def _refuse_tenant(self, context: TurnContext) -> None:
        """Another tenant (or an activity whose two tenant ids disagree): no data is read, no welcome."""
        activity = context.activity
        log.warning("turn %s: refused, tenant not allowed (%s)", activity.id, activity.type)
        if activity.type == ActivityTypes.message:
            await context.send_activity(messages.TENANT_REFUSED)
        elif activity.type == ActivityTypes.invoke:
            await super().on_turn(context)  # the invoke handler answers with the refusal itself

    async def _remember_conversation(self, context: TurnContext) -> None:
        activity = context.activity
        if self.helpdesk is None or activity.conversation is None or activity.from_property is None:
            return
        user, tenant = activity.from_property.aad_object_id, _tenant(context)
        personal = (activity.conversation.conversation_type or "personal") == "personal"
        if not (user and tenant and personal) or not self._tenant_allowed(context):
            return
        if activity.type == ActivityTypes.installation_update and activity.action in (
            "remove",
            "remove-upgrade",
        ):
            await self.helpdesk.store.delete_reference(tenant, user)
            self._saved_references.pop(f"{tenant}/{user.lower()}", None)
        elif activity.type in (
            ActivityTypes.message,
            ActivityTypes.conversation_update,
            ActivityTypes.installation_update,
        ):
            reference = TurnContext.get_conversation_reference(activity).serialize()
            key, value = f"{tenant}/{user.lower()}", json.dumps(reference, sort_keys=True)
            if self._saved_references.get(key) == value:
                return  # unchanged: no write per message
            if len(self._saved_references) > _REFERENCE_CACHE:
                self._saved_references.clear()
            await self.helpdesk.store.save_reference(tenant, user, reference)
            self._saved_references[key] = value

    # --- messages -------------------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if not self._tenant_allowed(turn_context):
            await turn_context.send_activity(messages.TENANT_REFUSED)
            return
        text = activity.text or ""
        if not text.strip() and activity.attachments:
            await turn_context.send_activity(messages.ATTACHMENTS_ONLY)
            return
        if await self._command(turn_context, text):
            return
        intent = classify(text)
        log.info("turn %s: intent %s/%s", activity.id, intent.name, intent.record_type)
        await self._routes[intent.name](turn_context, intent, text)

    async def _command(self, context: TurnContext, text: str) -> bool:
        """Helpdesk commands, said exactly: they are not questions to understand."""
        said = MENTION.sub(" ", text).strip().lower().rstrip(".!?")
        said = " ".join(said.split())
        user = context.activity.from_property.aad_object_id if context.activity.from_property else None
        if self.helpdesk is None:
            return False
        if said in ("my tickets", "my ticket", "show my tickets"):
            if user:
                await self._send_card(context, await self.helpdesk.list_for(user))
            return True
        if said in ("open tickets", "show open tickets"):
            if self.helpdesk.is_agent(user):
                await self._send_card(context, await self.helpdesk.list_open())
            else:
                await context.send_activity(messages.AGENTS_ONLY)
            return True
        if _SET_CHANNEL.fullmatch(said):
            await self._set_channel(context, user)
            return True
        other = _DIAGNOSE_OTHER.fullmatch(said)
        if other:
            if not self.helpdesk.is_agent(user):
                await context.send_activity(messages.ONLY_YOURSELF)
            else:
                card = await self._answer(other.group(1), "appointment", "")
                await self._send_card(context, card)
            return True
        return False

    async def _set_channel(self, context: TurnContext, user: str | None) -> None:
        assert self.helpdesk is not None
        activity = context.activity
        data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        channel = (data.get("channel") or {}).get("id") if isinstance(data.get("channel"), dict) else None
        if (
            activity.conversation is None
            or activity.conversation.conversation_type != "channel"
            or not channel
        ):
            await context.send_activity(messages.SET_CHANNEL_IN_A_CHANNEL)
            return
        tenant = _tenant(context) or ""
        team = data.get("team") if isinstance(data.get("team"), dict) else {}
        group = str(team.get("aadGroupId") or "") if isinstance(team, dict) else ""
        if not await self._may_set_channel(tenant, group, user):
            await context.send_activity(messages.AGENTS_OR_OWNERS_ONLY)
            return
        bot_id = activity.recipient.id if activity.recipient else ""
        await self.helpdesk.set_channel(
            tenant=tenant, channel_id=channel, service_url=activity.service_url, bot_id=bot_id, team=group
        )
        await context.send_activity(messages.CHANNEL_SET)

    async def _may_set_channel(self, tenant: str, group: str, user: str | None) -> bool:
        """Agents may choose the helpdesk channel. A team owner may only move it within the team that
        already holds it, or choose the first one where no agents are configured: owning *some* team
        must not let anyone divert the tickets to their own channel."""
        assert self.helpdesk is not None
        if self.helpdesk.is_agent(user):
            return True
        current = await self.helpdesk.channel(tenant)
        if current is None:
            allowed = not self.helpdesk.agents
        else:
            allowed = bool(group) and str(current.get("team") or "").lower() == group.lower()
        return allowed and await self._owns_team(group, user)

    async def _owns_team(self, group: str, user: str | None) -> bool:
        """Whether `user` owns the team: Graph knows who owns it."""
        if not (user and group and self.investigator.graph):
            return False
        try:
            with deadline(self.budget):
                return await self.investigator.graph.is_team_owner(str(group), user)
        except (BackendError, InputError) as exc:
            log.warning("could not check whether %s owns the team: %s", user, exc)
            return False

    async def _escalate_text(self, context: TurnContext, intent: Intent, text: str) -> None:
        user = context.activity.from_property.aad_object_id if context.activity.from_property else None
        if self.helpdesk is None:
            await context.send_activity(messages.ESCALATE_SOON)
            return
        if not user:
            await context.send_activity(messages.NO_IDENTITY)
            return
        answer = await self._escalate(context, user, None, "appointment", text)
        if isinstance(answer, str):
            await context.send_activity(MessageFactory.text(answer))
        else:
            await self._send_card(context, answer)

    async def _escalate(
        self, context: TurnContext, user: str, record: str | None, record_type: RecordType, comment: str
    ) -> Card | str:
        """The ticket's card for the person, or a message saying why there is none."""
        assert self.helpdesk is not None
        presser = context.activity.from_property
        # An agent may escalate someone else's diagnosis: the ticket is about that person, not the agent.
        name = (presser.name or user) if (presser.aad_object_id or "").lower() == user.lower() else user
        try:
            async with asyncio.timeout(self.budget):
                ticket, has_channel = await self.helpdesk.escalate(
                    tenant=_tenant(context) or "",
                    user=user,
                    user_name=name,
                    record_type=record_type,
                    record=record,
                    comment=comment,
                    reader=presser.aad_object_id,
                )
        except EscalationRefused as refused:
            if refused.existing is None:
                return messages.TOO_MANY_TICKETS.format(count=MAX_OPEN_TICKETS)
            notice = messages.TICKET_OPEN_ALREADY.format(key=refused.existing.key)
            return to_dict(build_ticket_card(refused.existing, for_agents=False, notice=notice))
        except StoreError as exc:
            log.error("turn %s: a ticket could not be stored: %s", context.activity.id, exc)
            return messages.TICKET_NOT_SAVED
        except TimeoutError:
            log.error("turn %s: storing a ticket took longer than %.0f s", context.activity.id, self.budget)
            return messages.TICKET_UNCONFIRMED
        notice = (messages.ESCALATED if has_channel else messages.ESCALATED_NO_CHANNEL).format(key=ticket.key)
        color = "Good" if has_channel else "Warning"
        return to_dict(build_ticket_card(ticket, for_agents=False, notice=notice, notice_color=color))

    async def _diagnose(self, context: TurnContext, intent: Intent, text: str) -> None:
        user = context.activity.from_property.aad_object_id if context.activity.from_property else None
        if not user:
            await context.send_activity(messages.NO_IDENTITY)
            return
        record_type: RecordType = intent.record_type or "appointment"
        typing = asyncio.create_task(self._typing_after(context, TYPING_AFTER))
        try:
            card = await self._answer(user, record_type, text if intent.name == "diagnose" else "")
        finally:
            typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await typing
        await self._send_card(context, card)

    @staticmethod
    async def _typing_after(context: TurnContext, delay: float) -> None:
        """Show "typing…" only when the answer takes long enough for a person to notice."""
        await asyncio.sleep(delay)
        await context.send_activity(Activity(type=ActivityTypes.typing))

    async def _answer(self, user: str, record_type: RecordType, text: str) -> Card:
        """Find the record the message means and diagnose it; else mailbox-level causes, then a picker."""
        now = datetime.now(UTC)
        words = subject_words(text) if text else []
        with deadline(self.budget):
            try:
                if words:
                    answer = await self._named_record(user, record_type, words, now)
                    if answer is not None:
                        return answer
                report = await self.investigator.run(user, None, record_type)
                if report.causes or not text:
                    return self._diagnosis_card(report, record_type, now)
                return await self._pick_record(user, record_type, report, words, now)
            except BackendError as exc:
                log.warning("a diagnosis failed: %s", exc)  # not who: an agent may have typed an address
                return to_dict(build_checklist_card(record_type=record_type, reason=_reason(exc), user=user))

    async def _named_record(
        self, user: str, record_type: RecordType, words: list[str], now: datetime
    ) -> Card | None:
        """The message names one of the user's recent records: one full diagnosis (mailbox included)."""
        systemuserid = await self.investigator.user_id(user)
        if systemuserid is None:
            return None
        recent = await self.investigator.dataverse.recent_records(record_type, systemuserid, around=now)
        matches = best_matches(words, recent)
        if len(matches) != 1:
            return None
        report = await self.investigator.run(user, None, record_type, record=matches[0])
        return self._diagnosis_card(report, record_type, now)

    async def _pick_record(
        self, user: str, record_type: RecordType, report: Report, words: list[str], now: datetime
    ) -> Card:
        """The mailbox is fine and no recent record matched: search by words, else offer recent records."""
        if words:
            try:  # older or later than the recent window: search by subject words
                found = await self.investigator.run(user, " ".join(words), record_type)
                if found.record is not None:
                    return self._diagnosis_card(found, record_type, now)
            except AmbiguousRecordError as exc:
                items = [PickerItem(c.id, c.subject, c.start) for c in exc.candidates]
                return to_dict(build_picker_card(items, record_type=record_type, user=user))
        systemuserid = report.user.systemuserid or ""
        recent = await self.investigator.dataverse.recent_records(record_type, systemuserid, around=now)
        items = [PickerItem(r.id, r.subject or "(no subject)", _when(r.start)) for r in recent]
        return to_dict(build_picker_card(items, record_type=record_type, user=user))

    @staticmethod
    def _diagnosis_card(report: Report, record_type: str, now: datetime, show_all: bool = False) -> Card:
        return to_dict(
            build_diagnosis_card(report, record_type=record_type, checked_at=now, show_all=show_all)
        )

    # --- card buttons (Universal Actions) -------------------------------------------------------------

    async def on_adaptive_card_invoke(
        self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        try:
            return await self._card_action(turn_context, invoke_value)
        except StoreError as exc:
            log.error("turn %s: the store failed: %s", turn_context.activity.id, exc)
            return _message(messages.STORE_DOWN)

    async def _card_action(
        self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        action = invoke_value.action if isinstance(invoke_value.action, dict) else {}
        verb = str(action.get("verb") or "")
        data = action.get("data")
        data = data if isinstance(data, dict) else {}
        user = (
            turn_context.activity.from_property.aad_object_id if turn_context.activity.from_property else None
        )
        if not self._tenant_allowed(turn_context):
            return _message(messages.TENANT_REFUSED)
        if not user:
            return _message(messages.NO_IDENTITY)
        if verb.startswith("ticket_"):
            if self.helpdesk is None or not self.helpdesk.is_agent(user):
                return _message(messages.AGENTS_ONLY)
            name = turn_context.activity.from_property.name or user
            result = await self.helpdesk.act(verb=verb, data=data, agent=user, agent_name=name)
            return _message(result) if isinstance(result, str) else _card(result)
        owner = data.get("user")
        agent = self.helpdesk is not None and self.helpdesk.is_agent(user)
        if owner is not None and str(owner).lower() != user.lower() and not agent:
            log.warning("turn %s: %s pressed a button on someone else's card", turn_context.activity.id, user)
            return _message(messages.NOT_YOURS)
        record_type: RecordType = next((t for t in RECORD_TYPES if t == data.get("type")), "appointment")
        record = data.get("record")
        if record is not None and not (isinstance(record, str) and is_id(record)):
            return _message(messages.UNKNOWN_ACTION)
        subject_of = str(owner or user)
        if verb == "escalate":
            if self.helpdesk is None:
                return _message(messages.ESCALATE_SOON)
            subject = data.get("subject") if isinstance(data.get("subject"), str) else None
            return _card(
                to_dict(
                    build_escalate_card(
                        user=subject_of, record=record, record_type=record_type, subject=subject
                    )
                )
            )
        if verb == "escalate_send":
            if self.helpdesk is None:
                return _message(messages.ESCALATE_SOON)
            comment = str(data.get("comment") or "")
            answer = await self._escalate(turn_context, subject_of, record, record_type, comment)
            return _message(answer) if isinstance(answer, str) else _card(answer)
        if verb in ("watch", "mute"):
            if self.helpdesk is None:
                return _message(messages.UNKNOWN_ACTION)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if verb == "mute":
                await self.helpdesk.store.set_setting(f"mute:{user.lower()}", {"since": stamp})
                return _message(messages.MUTED)
            cause = data.get("cause")
            causes = [cause] if isinstance(cause, str) else []
            await self.helpdesk.store.set_setting(f"watch:{user.lower()}", {"causes": causes, "since": stamp})
            return _message(messages.WATCHING)
        if verb not in ("recheck", "details", "pick", "check_mailbox"):
            return _message(messages.UNKNOWN_ACTION)
        if verb == "pick" and record is None:
            return _message(messages.UNKNOWN_ACTION)
        show_all = bool(data.get("show_all"))
        now = datetime.now(UTC)
        with deadline(self.budget):
            try:
                # Read as the presser: a record id in the card's data shows only what they may read.
                report = await self.investigator.run(subject_of, record, record_type, reader=user)
            except BackendError as exc:
                return _card(
                    to_dict(
                        build_checklist_card(record_type=record_type, reason=_reason(exc), user=subject_of)
                    )
                )
            except InputError:
                return _message(messages.UNKNOWN_ACTION)
        return _card(self._diagnosis_card(report, record_type, now, show_all))

    # --- installs -------------------------------------------------------------------------------------

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(member.id == bot_id for member in members_added):
            scope = (
                (turn_context.activity.conversation.conversation_type or "personal")
                if turn_context.activity.conversation
                else "personal"
            )
            name = (
                turn_context.activity.from_property.name
                if scope == "personal" and turn_context.activity.from_property
                else None
            )
            await self._send_card(turn_context, to_dict(build_welcome_card(name)))


_SET_CHANNEL = re.compile(r"(please )?(use|set) this channel (for|as) (the )?help ?desk( channel)?")
_DIAGNOSE_OTHER = re.compile(r"(?:diagnose|check) ([^\s@]+@\S+|[0-9a-f-]{36,37})")  # linear: no nested @ runs


def _tenant_ids(context: TurnContext) -> tuple[str | None, str | None]:
    """(channelData.tenant.id, conversation.tenantId), lower-case, as the activity states them."""
    data = context.activity.channel_data if isinstance(context.activity.channel_data, dict) else {}
    tenant = data.get("tenant") if isinstance(data.get("tenant"), dict) else {}
    stated = tenant.get("id") if isinstance(tenant, dict) else None
    conversation = context.activity.conversation.tenant_id if context.activity.conversation else None
    return (str(stated).lower() if stated else None), (str(conversation).lower() if conversation else None)


def _tenants_disagree(context: TurnContext) -> bool:
    stated, conversation = _tenant_ids(context)
    return stated is not None and conversation is not None and stated != conversation


def _tenant(context: TurnContext) -> str | None:
    data = context.activity.channel_data if isinstance(context.activity.channel_data, dict) else {}
    tenant = data.get("tenant") if isinstance(data.get("tenant"), dict) else {}
    found = tenant.get("id") if isinstance(tenant, dict) else None
    if not found and context.activity.conversation is not None:
        found = context.activity.conversation.tenant_id
    return str(found).lower() if found else None


def _reason(exc: BackendError) -> str:
    """Why the diagnosis couldn't run, for the person: whose fault, and when to try again."""
    if isinstance(exc, Throttled):
        when = f" after {exc.retry_at:%H:%M} UTC" if exc.retry_at else " in a few minutes"
        return f"{exc.service} asked Sync Doctor to slow down (too many requests). Please try again{when}."
    if exc.service == "Entra" and isinstance(exc, BackendRefused):
        return (
            "Sign-in to Dynamics 365 failed for Sync Doctor itself; your admin has to fix its configuration."
        )
    if exc.service == "Entra":
        return "Microsoft sign-in isn't answering Sync Doctor right now. Please try again in a few minutes."
    return f"{exc.service} didn't answer in time or refused ({type(exc).__name__})."


def _card(card: Card) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=card)


class _MessageInvokeResponse(AdaptiveCardInvokeResponse):  # type: ignore[misc]
    """A Universal Action answer that shows a message and leaves the card as it is.

    Its `value` is a string, which the SDK's model (typed as a dict) can't serialise.
    """

    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {
        **AdaptiveCardInvokeResponse._attribute_map,
        "value": {"key": "value", "type": "str"},
    }


def _message(text: str) -> AdaptiveCardInvokeResponse:
    return _MessageInvokeResponse(
        status_code=200, type="application/vnd.microsoft.activity.message", value=text
    )
