"""One activity as the handlers see it: who sent it, from which tenant, and the services that answer it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity

from bot.fixing import Fixer
from bot.helpdesk.desk import Helpdesk
from bot.investigation import Investigator

__all__ = ["Card", "Services", "Turn"]

Card = dict[str, Any]


@dataclass(frozen=True)
class Services:
    """What the handlers may call. They reach Dataverse, Graph and storage only through these.

    Args:
        investigator: runs diagnoses (and says which record a person means).
        helpdesk: tickets, the helpdesk channel, conversation references, notice settings; None: no helpdesk.
        budget: seconds a turn waits on its own work (storing a ticket); diagnoses keep the investigator's.
        allowed_tenants: tenant ids allowed to use the bot (empty: any).
        fixer: applies one-click fixes, as whoever confirms them; None: no fixes offered.
    """

    investigator: Investigator
    helpdesk: Helpdesk | None = None
    budget: float = 11.0
    allowed_tenants: frozenset[str] = frozenset()
    fixer: Fixer | None = None

    def is_agent(self, user: str | None) -> bool:
        return self.helpdesk is not None and self.helpdesk.is_agent(user)


@dataclass(frozen=True)
class Turn:
    """One incoming activity and the services that answer it."""

    context: TurnContext
    services: Services

    def tenant_allowed(self) -> bool:
        """The activity's tenant may use the bot, and its two statements of the tenant agree."""
        stated, conversation = _tenant_ids(self.activity)
        if stated is not None and conversation is not None and stated != conversation:
            return False
        allowed = self.services.allowed_tenants
        return not allowed or (self.tenant or "") in allowed

    async def say(self, text: str) -> None:
        await self.context.send_activity(MessageFactory.text(text))

    async def send_card(self, card: Card) -> None:
        await self.context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))

    @property
    def activity(self) -> Activity:
        """The activity Teams sent: read, never trusted beyond its shape (envelope.py checked that)."""
        return self.context.activity

    @property
    def user(self) -> str | None:
        """The sender's Entra object id, when Teams says it."""
        sender = self.activity.from_property
        return sender.aad_object_id if sender else None

    @property
    def name(self) -> str | None:
        sender = self.activity.from_property
        return sender.name if sender else None

    @property
    def tenant(self) -> str | None:
        """The tenant id, lower-case: channelData's, else the conversation's."""
        stated, conversation = _tenant_ids(self.activity)
        return stated or conversation

    def channel_data(self, key: str) -> dict[str, Any]:
        """One object of the activity's channelData ("team", "channel", "tenant"); {} when it has none."""
        return _dict(_dict(self.activity.channel_data).get(key))


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tenant_ids(activity: Activity) -> tuple[str | None, str | None]:
    """(channelData.tenant.id, conversation.tenantId), lower-case, as the activity states them."""
    stated = _dict(_dict(activity.channel_data).get("tenant")).get("id")
    conversation = activity.conversation.tenant_id if activity.conversation else None
    return (str(stated).lower() if stated else None), (str(conversation).lower() if conversation else None)
