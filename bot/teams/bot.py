"""The Teams activity handler: it converts and routes; the services decide.

Messages go to a helpdesk command (`commands.COMMANDS`) or to the route of their intent (`routes.ROUTES`);
card buttons to the verb table (`actions.ACTIONS`). Every turn also remembers the sender's 1:1 chat
(`references.References`), beside the answer.
"""

from __future__ import annotations

import asyncio
import logging

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    ChannelAccount,
)

from bot.errors import StoreError
from bot.fixing import Fixer
from bot.helpdesk.desk import Helpdesk
from bot.investigation import Investigator
from bot.teams import messages
from bot.teams.actions import dispatch, message_response
from bot.teams.commands import run_command
from bot.teams.intents import classify
from bot.teams.references import References
from bot.teams.routes import ROUTES
from bot.teams.turn import Services, Turn
from cards.common import to_dict
from cards.conversation import build_welcome_card

__all__ = ["SyncDoctorBot"]

log = logging.getLogger(__name__)
REMEMBER_WAIT = 2.0  # seconds a turn waits, after answering, for its conversation to be stored


class SyncDoctorBot(TeamsActivityHandler):  # type: ignore[misc]
    """Answers questions about records that don't reach Outlook, in personal chat, group chats and channels.

    Args:
        investigator: runs diagnoses against Dataverse and Graph.
        allowed_tenants: tenant ids allowed to use the bot (empty: any).
        budget: seconds for one turn's work; Teams wants an answer within 15 s.
        helpdesk: tickets and everything the bot keeps (None: no helpdesk, nothing kept).
        fixer: one-click fixes ("Fix it for me", an agent's Fix); None: none offered.
    """

    def __init__(
        self,
        investigator: Investigator,
        *,
        allowed_tenants: frozenset[str] = frozenset(),
        budget: float = 11.0,
        helpdesk: Helpdesk | None = None,
        fixer: Fixer | None = None,
    ):
        super().__init__()
        self.investigator = investigator
        self.helpdesk = helpdesk
        self.services = Services(investigator, helpdesk, budget, allowed_tenants, fixer)
        self.references = References(helpdesk)
        self._background: set[asyncio.Future[None]] = set()

    def _turn(self, context: TurnContext) -> Turn:
        return Turn(context, self.services)

    # --- every turn: refuse other tenants; remember how to reach the person later ----------------------

    async def on_turn(self, turn_context: TurnContext) -> None:
        turn = self._turn(turn_context)
        if not turn.tenant_allowed():
            await self._refuse_tenant(turn_context)
            return
        # Remembering runs beside the turn: a diagnosis needs no store, so a store that is down or locked
        # must not hold the answer up.
        remembering = asyncio.ensure_future(self.references.note(turn))
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
        elif activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
            await super().on_turn(context)  # the card handler answers with the refusal itself
        elif activity.type == ActivityTypes.invoke:  # any other invoke: refused, not "not implemented"
            refusal = InvokeResponse(status=403, body={"error": "this tenant is not allowed"})
            await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=refusal))

    # --- messages and card buttons --------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        turn = self._turn(turn_context)  # other tenants were refused in on_turn
        text = turn.activity.text or ""
        await self._note_agent(
            turn
        )  # an agent writing anywhere (the helpdesk channel too) says their Teams id
        if not text.strip() and turn.activity.attachments:
            await turn.say(messages.ATTACHMENTS_ONLY)
            return
        if await run_command(turn, text):
            return
        intent = classify(text)
        log.info("turn %s: intent %s/%s", turn.activity.id, intent.name, intent.record_type)
        await ROUTES[intent.name](turn, intent, text)

    async def on_adaptive_card_invoke(
        self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        turn = self._turn(turn_context)
        try:
            await self._note_agent(turn)
            return await dispatch(turn, invoke_value)
        except StoreError as exc:
            log.error("turn %s: the store failed: %s", turn_context.activity.id, exc)
            return message_response(messages.STORE_DOWN)

    async def _note_agent(self, turn: Turn) -> None:
        """An agent's message, press or refresh says their Teams user id: ticket cards refresh to the agent
        view for it (`refresh.userIds`). Only for an allowed tenant; the turn is answered all the same."""
        sender = turn.activity.from_property
        if self.helpdesk is None or sender is None or not turn.tenant_allowed():
            return
        try:
            await self.helpdesk.note_agent(turn.tenant, turn.user, sender.id)
        except StoreError as exc:
            log.warning("turn %s: could not keep an agent's Teams id: %s", turn.activity.id, exc)

    # --- installs -------------------------------------------------------------------------------------

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        turn = self._turn(turn_context)
        bot_id = turn.activity.recipient.id if turn.activity.recipient else None
        if not any(member.id == bot_id for member in members_added):
            return
        conversation = turn.activity.conversation
        personal = (conversation.conversation_type or "personal") == "personal" if conversation else True
        await turn.send_card(to_dict(build_welcome_card(turn.name if personal else None)))
