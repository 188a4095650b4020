"""Remembering how to reach each person later: their 1:1 conversation, kept through the helpdesk service."""

from __future__ import annotations

import json

from botbuilder.core import TurnContext
from botbuilder.schema import ActivityTypes

from bot.helpdesk.desk import Helpdesk
from bot.teams.turn import Turn

__all__ = ["References"]

_KEPT_ON = (ActivityTypes.message, ActivityTypes.conversation_update, ActivityTypes.installation_update)
_REMOVED = ("remove", "remove-upgrade")


class References:
    """Keeps each person's 1:1 conversation reference (notices and ticket news go there), and drops it when
    they remove the app. A reference this process already stored unchanged is not written again.

    Args:
        remember_at_most: people whose stored reference this process remembers (then it starts over).
    """

    def __init__(self, helpdesk: Helpdesk | None, *, remember_at_most: int = 50_000) -> None:
        self.helpdesk = helpdesk
        self.remember_at_most = remember_at_most
        self._saved: dict[str, str] = {}  # what this process last stored for each person

    async def note(self, turn: Turn) -> None:
        """Store (or drop) the conversation of this turn's sender, when it is their 1:1 chat."""
        who = _personal_sender(turn)
        if self.helpdesk is None or who is None:
            return
        tenant, user = who
        key, activity = f"{tenant}/{user.lower()}", turn.activity
        if activity.type == ActivityTypes.installation_update and activity.action in _REMOVED:
            await self.helpdesk.forget_conversation(tenant, user)
            self._saved.pop(key, None)
        elif activity.type in _KEPT_ON:
            reference = TurnContext.get_conversation_reference(activity).serialize()
            value = json.dumps(reference, sort_keys=True)
            if self._saved.get(key) == value:
                return  # unchanged: no write per message
            if len(self._saved) > self.remember_at_most:
                self._saved.clear()
            await self.helpdesk.remember_conversation(tenant, user, reference)
            self._saved[key] = value


def _personal_sender(turn: Turn) -> tuple[str, str] | None:
    """(tenant, sender's Entra object id) when the turn comes from someone's 1:1 chat."""
    activity = turn.activity
    if activity.conversation is None or activity.from_property is None:
        return None
    user, tenant = activity.from_property.aad_object_id, turn.tenant
    personal = (activity.conversation.conversation_type or "personal") == "personal"
    if not (user and tenant and personal):  # other tenants never get here: on_turn refused them
        return None
    return tenant, user
