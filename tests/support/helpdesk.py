"""The helpdesk as tests drive it: two agents, a helpdesk channel in their team, messages there, an
escalation from Alex's chat, and the ticket card as the channel received it."""

from __future__ import annotations

from typing import Any

from bot.config import Settings
from bot.store import Store
from bot.teams import messages
from tests.support.cards import buttons
from tests.support.org import ADELE, ALEX, MEGAN, QUARTERLY
from tests.support.teams import TENANT, Teams
from tests.support.timing import until

CHANNEL = "19:helpdesk@thread.tacv2"
AGENTS = Settings(HELPDESK_AGENTS=f"{MEGAN},{ADELE}")
TEAM_GROUP = "7e000000-0000-4000-8000-000000000001"


def in_channel(
    teams: Teams,
    text: str,
    *,
    user: str,
    display_name: str,
    channel: str = CHANNEL,
    group: str = TEAM_GROUP,
) -> dict[str, Any]:
    activity = teams.activity(user=user, display_name=display_name, text=f"<at>Sync Doctor</at> {text}")
    activity["conversation"] = {
        "id": f"{channel};messageid=1",
        "conversationType": "channel",
        "tenantId": TENANT,
    }
    activity["channelData"] = {
        "tenant": {"id": TENANT},
        "channel": {"id": channel},
        "team": {"id": f"19:team-{group}", "aadGroupId": group},
    }
    return activity


async def set_channel(teams: Teams) -> None:
    await teams.send(
        in_channel(teams, "use this channel for helpdesk", user=MEGAN, display_name="Megan Bowen")
    )
    assert teams.connector.texts()[-1] == messages.CHANNEL_SET


async def escalate(teams: Teams, comment: str = "Still not in Outlook after an hour") -> dict[str, Any]:
    data = {"user": ALEX, "record": QUARTERLY, "type": "appointment", "comment": comment}
    body = (await teams.press("escalate_send", data, user=ALEX)).json()
    await teams.settle()
    return body


def posted_buttons(teams: Teams) -> dict[str, dict[str, Any]]:
    """The buttons of the ticket card as the helpdesk channel received it."""
    return buttons(teams.connector.created[-1]["activity"]["attachments"][0]["content"])


async def all_sent(store: Store | None) -> None:
    """Wait until the outbox holds nothing pending: every entry is marked sent (or dead), so nothing can
    be sent again, and what the connector received is final."""
    assert store is not None

    async def nothing_pending() -> bool:
        return (await store.pending())[0] == 0

    await until(nothing_pending, "the outbox to settle")
