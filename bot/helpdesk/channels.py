"""Where the helpdesk's messages go, kept as settings: each tenant's helpdesk channel (and the last one set
anywhere, where sweep digests go), and where each ticket's card was posted.

    await set_helpdesk_channel(store, tenant, HelpdeskChannel(channel_id, service_url, bot_id, team))
    channel = await get_helpdesk_channel(store, tenant)     # HelpdeskChannel | None

It also keeps the agents' Teams user ids (MRIs, "29:..."), as the bot saw them: a ticket card's Universal
Actions `refresh.userIds` takes those, not Entra object ids, so that Teams fetches each agent's view.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bot.store.base import Store

__all__ = [
    "HelpdeskChannel",
    "TicketCard",
    "get_agent_ids",
    "get_default_channel",
    "get_helpdesk_channel",
    "get_ticket_card",
    "set_agent_ids",
    "set_helpdesk_channel",
    "set_ticket_card",
]


def _channel_key(tenant: str) -> str:
    return f"helpdesk_channel:{tenant.lower()}"


_DEFAULT_CHANNEL = "helpdesk_channel:default"  # the last channel set in any tenant: where digests go


def _card_key(number: int) -> str:
    """Kept beside the ticket, not in it: posting is not a change an agent could conflict with, so it must
    not bump the version the card's buttons carry."""
    return f"ticket_card:{number}"


def _agents_key(tenant: str) -> str:
    return f"helpdesk_agent_ids:{tenant.lower()}"


@dataclass(frozen=True)
class HelpdeskChannel:
    """A Teams channel tickets are posted to. `team` is the team's Entra group id ("" when unknown);
    `bot_id` the bot's id there ("": the app's)."""

    channel_id: str
    service_url: str
    bot_id: str = ""
    team: str = ""

    @classmethod
    def from_setting(cls, value: dict[str, Any]) -> HelpdeskChannel:
        return cls(
            channel_id=value["channel_id"],
            service_url=value["service_url"],
            bot_id=value.get("bot_id") or "",
            team=value.get("team") or "",
        )


@dataclass(frozen=True)
class TicketCard:
    """Where a ticket's card was posted (a channel thread): what updates it."""

    activity_id: str | None
    conversation_id: str | None
    service_url: str

    @classmethod
    def from_setting(cls, value: dict[str, Any]) -> TicketCard:
        return cls(value.get("activity_id"), value.get("conversation_id"), value["service_url"])

    def to_setting(self) -> dict[str, Any]:
        return asdict(self)


async def get_helpdesk_channel(store: Store, tenant: str) -> HelpdeskChannel | None:
    value = await store.get_setting(_channel_key(tenant))
    return None if value is None else HelpdeskChannel.from_setting(value)


async def get_default_channel(store: Store) -> HelpdeskChannel | None:
    """The helpdesk channel set last, in any tenant."""
    value = await store.get_setting(_DEFAULT_CHANNEL)
    return None if value is None else HelpdeskChannel.from_setting(value)


async def set_helpdesk_channel(store: Store, tenant: str, channel: HelpdeskChannel) -> None:
    """The tenant's helpdesk channel, and the default one from now on."""
    for key in (_channel_key(tenant), _DEFAULT_CHANNEL):
        await store.set_setting(key, asdict(channel))


async def get_ticket_card(store: Store, number: int) -> TicketCard | None:
    value = await store.get_setting(_card_key(number))
    return None if value is None else TicketCard.from_setting(value)


async def set_ticket_card(store: Store, number: int, card: TicketCard) -> None:
    await store.set_setting(_card_key(number), card.to_setting())


async def get_agent_ids(store: Store, tenant: str) -> dict[str, str]:
    """The tenant's agents' Teams user ids as last seen: {Entra object id (lower-case): MRI}."""
    value = await store.get_setting(_agents_key(tenant))
    ids = value.get("ids") if value else None
    return {str(k): str(v) for k, v in ids.items() if v} if isinstance(ids, dict) else {}


async def set_agent_ids(store: Store, tenant: str, ids: dict[str, str]) -> None:
    await store.set_setting(_agents_key(tenant), {"ids": dict(ids)})
