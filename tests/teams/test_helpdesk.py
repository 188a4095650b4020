"""Escalation to the helpdesk channel: tickets stored first, delivered through the outbox, agents act on them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.config import Settings
from bot.helpdesk.book import TicketBook
from bot.sandbox import LocalOrg
from bot.sandbox.connector import UNLIMITED, FakeConnector
from bot.teams import messages
from tests.support.cards import buttons, card_text
from tests.support.helpdesk import (
    AGENTS,
    CHANNEL,
    TEAM_GROUP,
    all_sent,
    escalate,
    in_channel,
    set_channel,
)
from tests.support.org import ADELE, ALEX, MEGAN, PLAYGROUND, QUARTERLY, make_local
from tests.support.teams import NAMES, TENANT, Teams, running_bot, running_connector
from tests.support.timing import until


def posted_card(teams: Teams) -> dict[str, Any]:
    """The ticket card as the helpdesk channel received it: the view every member sees."""
    return teams.connector.created[-1]["activity"]["attachments"][0]["content"]


async def seen_by(
    teams: Teams, user: str, card: dict[str, Any] | None = None, *, trigger: str = "automatic"
) -> dict[str, Any] | str:
    """What `user` sees of a channel's ticket card: Teams asks the bot with the card's `refresh` action
    (an `adaptiveCard/action` invoke from the channel thread; "automatic" for the agents in userIds)."""
    action = (card or posted_card(teams))["refresh"]["action"]
    activity = in_channel(teams, "", user=user, display_name=NAMES.get(user, "Someone"))
    activity.update(type="invoke", name="adaptiveCard/action", value={"action": action, "trigger": trigger})
    activity.pop("text", None)
    body = (await teams.send(activity)).json()
    assert body["statusCode"] == 200
    return body["value"]  # type: ignore[no-any-return]


async def agent_buttons(teams: Teams, agent: str = MEGAN) -> dict[str, dict[str, Any]]:
    """The buttons of the channel's ticket card as an agent sees it (refreshed to the agent view)."""
    view = await seen_by(teams, agent)
    assert isinstance(view, dict), view
    return buttons(view)


@pytest.fixture
async def desk(local: LocalOrg) -> AsyncIterator[Teams]:
    async with running_bot(local, AGENTS) as teams:
        yield teams


async def test_only_agents_set_the_channel_and_only_in_a_channel(desk: Teams) -> None:
    await desk.send(in_channel(desk, "use this channel for helpdesk", user=ALEX, display_name="Alex Wilber"))
    assert desk.connector.texts()[-1] == messages.AGENTS_OR_OWNERS_ONLY
    await desk.say("use this channel for helpdesk", user=MEGAN)
    assert desk.connector.texts()[-1] == messages.SET_CHANNEL_IN_A_CHANNEL
    await set_channel(desk)


async def test_escalation_posts_a_ticket_card_to_the_channel(desk: Teams) -> None:
    await desk.say("hi", user=MEGAN)  # Megan's 1:1 chat with the bot: it keeps her Teams user id
    await set_channel(desk)
    body = await escalate(desk)
    confirmation = card_text(body["value"])
    assert "Ticket SD-1001 is with the helpdesk" in confirmation
    [thread] = desk.connector.created
    assert thread["channelData"]["channel"]["id"] == CHANNEL
    ticket_card = thread["activity"]["attachments"][0]["content"]
    text = card_text(ticket_card)
    assert "SD-1001: Open" in text and "Alex Wilber" in text
    assert "This appointment doesn't meet your synchronization filters" in text  # the diagnosis, attached
    assert "Still not in Outlook after an hour" in text
    # Everyone sees the read-only view: no agent buttons, no note box; only "Refresh" in the overflow menu.
    assert [(a["title"], a.get("mode")) for a in ticket_card["actions"]] == [("Refresh", "secondary")]
    assert "Input.Text" not in str(ticket_card)
    # Teams refreshes it for the agents (user ids as Teams gives them, learned from their own activities).
    assert ticket_card["refresh"]["action"]["verb"] == "ticket_view"
    assert ticket_card["refresh"]["userIds"] == [f"29:{MEGAN}"]  # Adele's id isn't known yet
    assert set(await agent_buttons(desk, MEGAN)) == {"Assign me", "Re-run", "Resolve"}
    await desk.settle()
    assert set(await agent_buttons(desk, ADELE)) == {"Assign me", "Re-run", "Resolve"}


async def test_the_refresh_gives_agents_their_view_and_others_the_read_only_one(desk: Teams) -> None:
    await set_channel(desk)
    await escalate(desk)
    await until(lambda: len(desk.connector.created) == 1, "the ticket post")
    read_only = posted_card(desk)
    agent_view = await seen_by(desk, MEGAN)
    assert isinstance(agent_view, dict)
    # Megan chose the channel there: her message said her Teams id, so the card refreshes for her; Adele's
    # isn't known yet (she has neither written nor pressed anything).
    assert read_only["refresh"]["userIds"] == [f"29:{MEGAN}"]
    assert agent_view["refresh"] == read_only["refresh"]
    adele = await seen_by(desk, ADELE)  # her refresh by hand says hers: the next card refreshes for both
    assert isinstance(adele, dict) and sorted(adele["refresh"]["userIds"]) == sorted(
        [f"29:{MEGAN}", f"29:{ADELE}"]
    )
    assert "note" in str(agent_view) and "Resolution note" in card_text(agent_view)
    # A channel member who is no agent gets the read-only view, automatic or by hand...
    for trigger in ("automatic", "manual"):
        member = await seen_by(desk, PLAYGROUND + "23", trigger=trigger)
        assert isinstance(member, dict)
        assert member["body"] == read_only["body"] and set(buttons(member)) == {"Refresh"}
    # ...and the ticket's own person too, from their chat; someone else elsewhere gets nothing.
    elsewhere = desk.activity(
        "invoke",
        user=PLAYGROUND + "23",
        name="adaptiveCard/action",
        value={"action": read_only["refresh"]["action"], "trigger": "manual"},
    )
    assert "Only helpdesk agents" in (await desk.send(elsewhere)).json()["value"]
    alex = await desk.press("ticket_view", {"ticket": 1001}, user=ALEX)
    assert "SD-1001: Open" in card_text(alex.json()["value"]) and not buttons(alex.json()["value"]).keys() - {
        "Refresh"
    }
    # Teams refreshes on its own only to show: an "automatic" invoke of an agent's verb does nothing.
    assign = (await agent_buttons(desk))["Assign me"]
    forged = in_channel(desk, "", user=MEGAN, display_name="Megan Bowen")
    forged.update(
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", **assign}, "trigger": "automatic"},
    )
    assert (await desk.send(forged)).json()["value"] == messages.UNKNOWN_ACTION
    assert desk.store is not None and (await desk.store.get_ticket(1001)).status == "open"  # type: ignore[union-attr]
    # A non-agent's press of an agent's button (from a forged or stale card) still does no agent work.
    refused = (await desk.press("ticket_assign", assign["data"], user=PLAYGROUND + "23")).json()
    assert refused["value"] == messages.AGENTS_ONLY


async def test_user_ids_name_at_most_60_agents_by_their_teams_ids(local: LocalOrg) -> None:
    agents = [f"a0000000-0000-4000-8000-{n:012d}" for n in range(70)]
    async with running_bot(local, Settings(HELPDESK_AGENTS=",".join(agents))) as teams:
        for agent in agents:
            await teams.say("hi", user=agent)  # their 1:1 chat: the bot keeps their Teams id
        await teams.send(in_channel(teams, "use this channel for helpdesk", user=agents[0], display_name="A"))
        await escalate(teams)
        await until(lambda: len(teams.connector.created) == 1, "the ticket post")
        user_ids = posted_card(teams)["refresh"]["userIds"]
        assert len(user_ids) == 60 and set(user_ids) <= {f"29:{a}" for a in agents}


async def test_without_a_channel_the_ticket_is_kept_and_posted_once_one_is_set(desk: Teams) -> None:
    body = await escalate(desk)
    assert "no helpdesk channel is set up yet" in card_text(body["value"])
    assert desk.connector.created == []
    assert desk.store is not None and (await desk.store.get_ticket(1001)) is not None
    await set_channel(desk)
    await desk.settle()
    await until(lambda: len(desk.connector.created) == 1, "the waiting ticket to be posted")


async def test_assign_resolve_reopen_update_the_card_and_tell_the_user(desk: Teams) -> None:
    await desk.say("hi", user=ALEX)  # Alex's 1:1 chat: where notices go
    await set_channel(desk)
    await escalate(desk)
    await until(lambda: len(desk.connector.created) == 1, "the ticket post")
    assign = (await agent_buttons(desk))["Assign me"]  # pressed on the card exactly as Megan saw it
    assigned = (await desk.press(assign["verb"], assign["data"], user=MEGAN)).json()["value"]
    assert assigned["refresh"]["action"]["verb"] == "ticket_view"  # still refreshes per person
    assert "SD-1001: Assigned" in card_text(assigned) and "Megan" in card_text(assigned)
    await desk.settle()
    await until(lambda: any("assigned to" in t for t in desk.connector.texts()), "the user's notice")
    await until(lambda: len(desk.connector.updated) >= 1, "the channel card's update")
    notice = next(a for a in desk.connector.sent if "assigned to" in (a.get("text") or ""))
    assert notice["conversation_id"] == "a:personal-chat-1"  # the user's own chat
    resolve = buttons(assigned)["Resolve"]
    resolved = (
        await desk.press(resolve["verb"], {**resolve["data"], "note": "Made Alex an attendee"}, user=MEGAN)
    ).json()
    assert "Resolution: Made Alex an attendee" in card_text(resolved["value"])
    assert set(buttons(resolved["value"])) == {"Reopen"}
    await desk.settle()
    await until(
        lambda: any("resolved by" in t and "Made Alex an attendee" in t for t in desk.connector.texts()),
        "resolve notice",
    )
    reopen = buttons(resolved["value"])["Reopen"]
    reopened = (await desk.press(reopen["verb"], reopen["data"], user=ADELE)).json()
    assert "SD-1001: Assigned" in card_text(reopened["value"]) and "Adele" in card_text(reopened["value"])


async def test_a_throttled_notice_is_not_repeated(local: LocalOrg) -> None:
    """Teams allows one message a second here: the notice (text and ticket card) still arrives once."""
    connector = FakeConnector(per_conversation=1, per_tenant=UNLIMITED)
    await connector.start()
    try:
        async with running_bot(local, AGENTS, connector=connector) as desk:
            await desk.say("hi", user=ALEX)
            await set_channel(desk)
            await escalate(desk)
            await until(lambda: len(connector.created) == 1, "the ticket post")
            await desk.press("ticket_assign", (await agent_buttons(desk))["Assign me"]["data"], user=MEGAN)
            await until(
                lambda: connector.throttled > 0 and any("assigned to" in t for t in connector.texts()),
                "the notice",
            )
            await all_sent(desk.store)  # settled: a (wrong) resend after the throttled half would be here
            notices = [a for a in connector.sent if "assigned to" in (a.get("text") or "")]
            assert len(notices) == 1 and notices[0]["attachments"]  # once, with the ticket's card
    finally:
        await connector.close()


async def test_a_hung_send_is_given_up_before_its_lease_ends_and_posted_once(local: LocalOrg) -> None:
    """The connector holds the ticket post: the bot gives up on it (a third of the lease), and when the
    connector answers again the ticket is posted once, not once per lease that expired meanwhile."""
    connector = FakeConnector.unlimited()
    await connector.start()
    settings = Settings(HELPDESK_AGENTS=f"{MEGAN},{ADELE}", OUTBOX_LEASE_SECONDS=1.5)
    try:
        async with running_bot(local, settings, connector=connector) as desk:
            await set_channel(desk)
            connector.hang_from = connector.admitted + 1
            data = {"user": ALEX, "record": QUARTERLY, "type": "appointment", "comment": "not there"}
            await desk.press("escalate_send", data, user=ALEX)  # its post goes out in the background
            await until(lambda: connector.abandoned == 1, "the bot to give up on the held post")
            connector.hang_from = None
            connector.release.set()
            await until(lambda: len(connector.created) == 1, "the ticket post")
            await all_sent(desk.store)  # settled: a (wrong) second post would be here
            assert len(connector.created) == 1
    finally:
        await connector.close()


async def test_two_agents_assign_at_once_one_wins_no_lost_update(desk: Teams) -> None:
    await set_channel(desk)
    await escalate(desk)
    await until(lambda: len(desk.connector.created) == 1, "the ticket post")
    data = (await agent_buttons(desk))["Assign me"]["data"]
    first, second = await asyncio.gather(
        desk.press("ticket_assign", data, user=MEGAN),
        desk.press("ticket_assign", data, user=ADELE),
    )
    texts = [card_text(r.json()["value"]) for r in (first, second)]
    assert sum("changed this ticket just before you" in t for t in texts) == 1
    assert desk.store is not None
    ticket = await TicketBook(desk.store).get(1001)
    assert ticket is not None and ticket.version == 2  # one change, not two
    winner = "Megan" if "Megan" in (ticket.assignee_name or "") else "Adele"
    assert all(winner in t for t in texts)  # both now see the same, current state


async def test_forged_and_stale_ticket_actions(desk: Teams) -> None:
    await set_channel(desk)
    await escalate(desk)
    await until(lambda: len(desk.connector.created) == 1, "the ticket post")
    posted = await agent_buttons(desk)
    body = (await desk.press("ticket_assign", posted["Assign me"]["data"], user=ALEX)).json()
    assert body["value"] == messages.AGENTS_ONLY
    await desk.press("ticket_assign", posted["Assign me"]["data"], user=ADELE)
    stale = (await desk.press("ticket_resolve", posted["Resolve"]["data"], user=MEGAN)).json()  # an old card
    assert "changed this ticket just before you" in card_text(stale["value"])
    missing = (await desk.press("ticket_assign", {"ticket": 9999, "version": 1}, user=MEGAN)).json()
    assert missing["value"] == "There is no ticket SD-9999."
    garbled = (await desk.press("ticket_assign", {"ticket": "1001; drop", "version": 1}, user=MEGAN)).json()
    assert "missing its ticket number" in garbled["value"]
    assert desk.store is not None and (await desk.store.get_ticket(1001)).status == "assigned"  # type: ignore[union-attr]


async def test_a_throttled_post_is_retried_and_delivered_once(desk: Teams) -> None:
    await set_channel(desk)
    desk.connector.failures = [429]
    await escalate(desk)
    await until(lambda: len(desk.connector.created) == 1, "the retried post")
    await all_sent(desk.store)  # settled: nothing is posted twice
    assert len(desk.connector.created) == 1


async def test_my_tickets_and_open_tickets(desk: Teams) -> None:
    await set_channel(desk)
    await escalate(desk)
    await desk.say("my tickets", user=ALEX)
    assert "SD-1001" in card_text(desk.connector.cards()[-1])
    await desk.say("open tickets", user=ALEX)
    assert desk.connector.texts()[-1] == messages.AGENTS_ONLY
    await desk.say("open tickets", user=MEGAN)
    assert "SD-1001" in card_text(desk.connector.cards()[-1])


async def test_talk_to_a_human_opens_a_ticket(desk: Teams) -> None:
    await set_channel(desk)
    await desk.say("I need to talk to a human", user=ALEX)
    await desk.settle()
    assert "Ticket SD-1001 is with the helpdesk" in card_text(desk.connector.cards()[-1])
    await until(lambda: len(desk.connector.created) == 1, "the ticket post")


async def test_agents_may_diagnose_anyone_others_only_themselves(desk: Teams) -> None:
    await desk.say("diagnose meganb@example.com", user=ALEX)
    assert desk.connector.texts()[-1] == messages.ONLY_YOURSELF
    await desk.say("diagnose meganb@example.com", user=ADELE)
    assert "Appointments, Contacts, and Tasks are not set to synchronize" in card_text(
        desk.connector.cards()[-1]
    )


async def test_a_restart_loses_no_ticket_and_posts_none_twice(local: LocalOrg, tmp_path: Any) -> None:
    from bot.store import SqliteStore

    path = str(tmp_path / "store.sqlite3")
    async with running_connector() as connector:
        first_store = SqliteStore(path)
        async with running_bot(local, AGENTS, store=first_store, connector=connector) as teams:
            await set_channel(teams)
            connector.failures = [503] * 1000  # the connector is down: nothing gets out
            await escalate(teams)
            assert connector.created == []
        await first_store.close()
        # The bot restarts (same store file) and the connector is back: the waiting ticket goes out, once.
        connector.failures = []
        second_store = SqliteStore(path)
        async with running_bot(local, AGENTS, store=second_store, connector=connector) as teams:
            await until(lambda: len(teams.connector.created) == 1, "the ticket post after the restart")
            await all_sent(teams.store)
            assert len(teams.connector.created) == 1
            assert "SD-1001" in card_text(teams.connector.created[0]["activity"]["attachments"][0]["content"])
        await second_store.close()


async def test_a_team_owner_may_choose_the_channel_only_where_no_agent_could(
    org_data: dict[str, Any],
) -> None:
    org_data["graph"]["teams"] = {
        TEAM_GROUP: {
            "members": [
                {"userId": ALEX, "displayName": "Alex Wilber", "roles": ["owner"]},
                {"userId": PLAYGROUND + "23", "displayName": "Isaiah Langer", "roles": []},
            ]
        }
    }
    async with make_local(org_data) as local, running_bot(local, Settings()) as teams:  # no agents
        isaiah = in_channel(
            teams, "use this channel for helpdesk", user=PLAYGROUND + "23", display_name="Isaiah"
        )
        await teams.send(isaiah)
        assert teams.connector.texts()[-1] == messages.AGENTS_OR_OWNERS_ONLY  # a member, not an owner
        await teams.send(
            in_channel(teams, "use this channel for helpdesk", user=ALEX, display_name="Alex Wilber")
        )
        assert teams.connector.texts()[-1] == messages.CHANNEL_SET


async def test_owning_some_team_does_not_let_anyone_divert_the_tickets(org_data: dict[str, Any]) -> None:
    other_group, other_channel = "7e000000-0000-4000-8000-000000000002", "19:mine@thread.tacv2"
    org_data["graph"]["teams"] = {
        TEAM_GROUP: {"members": [{"userId": ALEX, "displayName": "Alex Wilber", "roles": ["owner"]}]},
        other_group: {
            "members": [{"userId": PLAYGROUND + "23", "displayName": "Isaiah", "roles": ["owner"]}]
        },
    }
    async with make_local(org_data) as local, running_bot(local, AGENTS) as teams:
        # With agents configured, an owner can't choose the first channel...
        await teams.send(
            in_channel(teams, "use this channel for helpdesk", user=ALEX, display_name="Alex Wilber")
        )
        assert teams.connector.texts()[-1] == messages.AGENTS_OR_OWNERS_ONLY
        await set_channel(teams)  # ...an agent does, in the helpdesk team
        # The owner of another team can't move it to their own channel.
        await teams.send(
            in_channel(
                teams,
                "use this channel for helpdesk",
                user=PLAYGROUND + "23",
                display_name="Isaiah",
                channel=other_channel,
                group=other_group,
            )
        )
        assert teams.connector.texts()[-1] == messages.AGENTS_OR_OWNERS_ONLY
        # The helpdesk team's owner may move it within that team.
        moved = "19:helpdesk-2@thread.tacv2"
        await teams.send(
            in_channel(teams, "use this channel for helpdesk", user=ALEX, display_name="Alex", channel=moved)
        )
        assert teams.connector.texts()[-1] == messages.CHANNEL_SET
        await escalate(teams)
        await until(lambda: len(teams.connector.created) == 1, "the ticket's post")
        assert teams.connector.created[0]["channelData"]["channel"]["id"] == moved


async def test_references_are_kept_per_person_and_dropped_on_uninstall(desk: Teams) -> None:
    assert desk.store is not None
    await desk.say("hi", user=ALEX)
    saved = await desk.store.get_reference(TENANT, ALEX)
    assert saved is not None and saved["conversation"]["id"] == "a:personal-chat-1"
    assert saved["serviceUrl"] == desk.connector.url
    # A channel is not a 1:1 chat: nothing to remember there.
    await desk.send(in_channel(desk, "help", user=MEGAN, display_name="Megan Bowen"))
    assert await desk.store.get_reference(TENANT, MEGAN) is None
    await desk.send(desk.activity("installationUpdate", user=ALEX, action="remove"))
    assert await desk.store.get_reference(TENANT, ALEX) is None


async def test_an_agent_rechecks_the_person_on_the_card_not_themselves(desk: Teams) -> None:
    from tests.support.org import QUARTERLY as RECORD

    data = {"user": ALEX, "record": RECORD, "type": "appointment", "show_all": False}
    body = (
        await desk.press("recheck", data, user=MEGAN)
    ).json()  # Megan's own mailbox is broken; Alex's isn't
    text = card_text(body["value"])
    assert "Alex Wilber" in text and "doesn't meet your synchronization filters" in text
    assert "not set to synchronize" not in text
