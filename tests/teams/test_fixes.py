"""One-click fixes in Teams, whole turns against the sandbox org: Fix it for me on the diagnosis card, the
confirmation card, Confirm, the result in place, Undo; an agent's Fix on a ticket card; and every refusal:
someone else's fix, a forged card, a user whose Dataverse privileges don't allow it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.app import BOT, create_app
from bot.config import Settings
from bot.diagnosis import Finding
from bot.diagnosis.fixes import FIX_IDS, Change, Fix
from bot.fixing import Applied, Fixer, may_apply, register_followups
from bot.helpdesk.tickets import Ticket
from bot.investigation import Investigator
from bot.notify.outbox import deliverer_for
from bot.sandbox import LocalOrg, SandboxConfig, local_org
from bot.sandbox.config import Fault
from bot.store import SqliteStore
from bot.teams import messages
from bot.teams.payloads import PERSON_FIXES, SELF_FIXES
from cards.common import to_dict
from cards.fix import describe
from cards.ticket import build_ticket_card
from tests.support.cards import buttons, card_text
from tests.support.helpdesk import AGENTS, set_channel
from tests.support.org import ADELE, ALEX, MEGAN, PLAYGROUND, QUARTERLY, make_local
from tests.support.teams import Teams, running_bot, running_connector
from tests.support.timing import until

# What the diagnosis card's "Fix it for me" sends for Alex's owner-only "Quarterly review with Contoso".
FIX = {"user": ALEX, "record": QUARTERLY, "type": "appointment", "fix": "add-filter"}
ALEX_USER = "a1000000-0000-4000-8000-000000000001"  # Alex's systemuserid in the sample org
ADELE_USER = "a1000000-0000-4000-8000-000000000003"
MEGAN_MAILBOX = "b2000000-0000-4000-8000-000000000002"
# Isaiah Langer (the Playground's fourth user): his mailbox was never tested and enabled.
ISAIAH, ISAIAH_NAME = PLAYGROUND + "23", "Isaiah Langer"
ISAIAH_USER, ISAIAH_MAILBOX = "a1000000-0000-4000-8000-000000000004", "b2000000-0000-4000-8000-000000000004"
TEST_MAILBOX = {"user": ISAIAH, "type": "appointment", "fix": "schedule-mailbox-test"}  # no record
NEW_FILTER = "Create a sync filter “Appointments I own” owned by you, selecting appointments you own"
CAVEAT = "appointments it selected may then be removed from your Outlook"


def quiet(data: dict[str, Any] | None = None) -> Any:
    """The org (the sample, or `data`) with no timed sync cycles: a test runs them itself."""
    config = SandboxConfig(sync_every=0)
    return local_org(config=config) if data is None else make_local(data, config=config)


def filters_named(local: LocalOrg, name: str) -> list[dict[str, Any]]:
    return [q for q in local.running.sandbox.org.rows("userqueries") if q.get("name") == name]


@pytest.fixture
async def org() -> AsyncIterator[LocalOrg]:
    async with quiet() as local:
        yield local


@pytest.fixture
async def teams(org: LocalOrg) -> AsyncIterator[Teams]:
    async with running_bot(org, AGENTS) as running:
        yield running


def fixer(teams: Teams) -> Fixer:
    assert teams.app is not None
    found = teams.app[BOT].services.fixer
    assert found is not None
    return found


async def press(
    teams: Teams, button: dict[str, Any], user: str, name: str | None = None
) -> dict[str, Any] | str:
    """Press a card's button as `user`: the card that replaces it, or the message shown beside it."""
    body = (await teams.press(button["verb"], button["data"], user=user, display_name=name)).json()
    assert body["statusCode"] == 200
    return body["value"]  # type: ignore[no-any-return]


async def card(teams: Teams, verb: str, data: dict[str, Any], user: str) -> dict[str, Any]:
    value = await press(teams, {"verb": verb, "data": data}, user)
    assert isinstance(value, dict), value
    return value


def visible(card: dict[str, Any]) -> list[str]:
    return [a["title"] for a in card.get("actions", []) if a.get("mode") != "secondary"]


async def test_alex_fixes_his_owner_only_appointment_and_undoes_it(teams: Teams, org: LocalOrg) -> None:
    # The diagnosis card offers the fix to its own person, up front.
    await teams.say("Quarterly review isn't on my calendar", user=ALEX)
    [diagnosis] = teams.connector.cards()
    assert visible(diagnosis) == ["Fix it for me", "Escalate"]
    assert {"Re-check", "All checks"} <= set(buttons(diagnosis))  # in the overflow menu
    offer = buttons(diagnosis)["Fix it for me"]
    assert offer["verb"] == "fix_offer" and offer["data"] == FIX  # whose, which record and fix: nothing more
    assert "Fix it for me" in card_text(diagnosis) and "Appointments I own" in card_text(diagnosis)

    # The confirmation card says exactly what changes, and what Undo would do; nothing is written yet.
    confirm = await press(teams, offer, ALEX)
    assert isinstance(confirm, dict)
    text = card_text(confirm)
    assert "Fix it for me?" in text and NEW_FILTER in text and CAVEAT in text
    assert visible(confirm) == ["Confirm", "Cancel"]
    assert buttons(confirm)["Confirm"]["data"] == FIX
    assert await fixer(teams).history(ALEX) == []
    cancel = await press(teams, buttons(confirm)["Cancel"], ALEX)  # Cancel: the diagnosis again
    assert isinstance(cancel, dict) and "doesn't meet your synchronization filters" in card_text(cancel)

    # Confirm: the filter is made, as Alex; the card says when the bot checks again, and offers Undo.
    done = await press(teams, buttons(confirm)["Confirm"], ALEX)
    assert isinstance(done, dict)
    text = card_text(done)
    assert "Done. I'll check again after the next sync, in about 15 minutes" in text
    assert "Created a sync filter “Appointments I own” owned by you" in text
    assert visible(done) == ["Undo", "Re-check"]
    [applied] = await fixer(teams).history(ALEX)
    assert (applied.fix.id, applied.by, applied.state, applied.record) == (
        "add-filter",
        ALEX,
        "applied",
        QUARTERLY,
    )
    [made] = filters_named(org, "Appointments I own")
    assert made["_ownerid_value"] == ALEX_USER and made["statecode"] == 0  # owned by Alex: made as him

    # Pressed again: the same result, nothing written twice.
    again = await press(teams, buttons(confirm)["Confirm"], ALEX)
    assert isinstance(again, dict) and "done once already" in card_text(again)
    assert len(await fixer(teams).history(ALEX)) == 1
    assert len(filters_named(org, "Appointments I own")) == 1

    # The record meets a filter now; after the next sync cycle it is in Alex's Outlook.
    now = await press(teams, buttons(done)["Re-check"], ALEX)
    assert isinstance(now, dict) and "doesn't meet your synchronization filters" not in card_text(now)
    await org.running.sandbox.sync.run_now()
    synced = await press(teams, buttons(done)["Re-check"], ALEX)
    assert isinstance(synced, dict) and "it is in your Outlook calendar" in card_text(synced)

    # Undo turns the filter off again, as Alex; the store keeps that too.
    undone = await press(teams, buttons(done)["Undo"], ALEX)
    assert isinstance(undone, dict) and "I turned the filter off again" in card_text(undone)
    assert "Undo" not in buttons(undone)
    [kept] = await fixer(teams).history(ALEX)
    assert kept.state == "undone" and made["statecode"] == 1
    back = await press(teams, buttons(done)["Re-check"], ALEX)
    assert isinstance(back, dict) and "doesn't meet your synchronization filters" in card_text(back)


async def test_a_second_undo_and_a_second_offer_show_what_is_in_place(teams: Teams) -> None:
    await card(teams, "fix_apply", FIX, ALEX)
    again = await card(teams, "fix_offer", FIX, ALEX)  # Fix it for me on the old card, after the fix
    assert "done once already" in card_text(again) and "Undo" in buttons(again)
    undo = buttons(again)["Undo"]
    await press(teams, undo, ALEX)
    second = await press(teams, undo, ALEX)
    assert isinstance(second, dict) and "Undone" in card_text(second)


async def test_two_presses_at_once_make_one_filter(teams: Teams, org: LocalOrg) -> None:
    answers = await asyncio.gather(
        *(press(teams, {"verb": "fix_apply", "data": FIX}, ALEX) for _ in range(3))
    )
    texts = [card_text(a) if isinstance(a, dict) else a for a in answers]
    assert all("Change made" in t or "Still working on it" in t for t in texts), texts
    assert sum("done once already" not in t and "Still working" not in t for t in texts) == 1
    assert len(await fixer(teams).history(ALEX)) == 1
    assert len(filters_named(org, "Appointments I own")) == 1


async def test_someone_elses_fix_is_refused_before_anything_runs(teams: Teams, org: LocalOrg) -> None:
    before = org.running.sandbox.counts["dataverse"]
    # Another person (Adele is an agent, too): a person's own filters are theirs alone to change.
    for user in (ADELE, PLAYGROUND + "24"):
        for verb in ("fix_offer", "fix_apply"):
            assert await press(teams, {"verb": verb, "data": FIX}, user) == messages.NOT_YOURS
    # An ordinary user pressing an agent's fix (a forged ticket card): agents only.
    agents_fix = {"user": MEGAN, "record": None, "type": "appointment", "fix": "set-act-server-side-sync"}
    for verb in ("ticket_fix_offer", "ticket_fix_apply"):
        assert await press(teams, {"verb": verb, "data": agents_fix}, ALEX) == messages.AGENTS_ONLY
    # A forged card: an agent's fix id on the person's own button, a filter fix on an agent's, junk.
    own = {**agents_fix, "user": ALEX}
    assert await press(teams, {"verb": "fix_apply", "data": own}, ALEX) == messages.UNKNOWN_ACTION
    assert await press(teams, {"verb": "ticket_fix_apply", "data": FIX}, MEGAN) == messages.UNKNOWN_ACTION
    for junk in ({**FIX, "fix": "drop-table"}, {**FIX, "record": "' or 1 eq 1"}, {"verb": "x"}):
        assert await press(teams, {"verb": "fix_apply", "data": junk}, ALEX) == messages.UNKNOWN_ACTION
    assert await press(teams, {"verb": "fix_undo", "data": {"user": ALEX, "key": "../x"}}, ALEX) == (
        messages.UNKNOWN_ACTION
    )
    assert org.running.sandbox.counts["dataverse"] == before  # refused before anything was read
    assert await fixer(teams).history() == []


async def test_a_fix_that_does_not_apply_shows_a_fresh_diagnosis(teams: Teams, org: LocalOrg) -> None:
    # Alex has no deactivated filter that would select it: the card's fix id doesn't apply.
    forged = {**FIX, "fix": "activate-filter"}
    for verb in ("fix_offer", "fix_apply"):
        shown = await card(teams, verb, forged, ALEX)
        text = card_text(shown)
        assert messages.FIX_NOT_APPLICABLE in text and "doesn't meet your synchronization filters" in text
        assert buttons(shown)["Fix it for me"]["data"] == FIX  # what does apply
    # Someone else's appointment that Alex may not read: nothing of it is shown, nothing written.
    megans = {**FIX, "record": "c3000000-0000-4000-8000-000000000002"}
    shown = await card(teams, "fix_apply", megans, ALEX)
    assert "Product demo" not in card_text(shown)
    assert await fixer(teams).history() == []
    # Undo of nothing: said so.
    missing = {"user": ALEX, "key": "0" * 32}
    assert await press(teams, {"verb": "fix_undo", "data": missing}, ALEX) == messages.FIX_UNDO_NOTHING


async def test_a_fix_dataverse_refuses_goes_to_the_helpdesk(org_data: dict[str, Any]) -> None:
    # Alex's roles don't let him make sync filters (listed: exactly these privileges).
    org_data["$privileges"] = {ALEX_USER: ["prvReadActivity"]}
    async with quiet(org_data) as local, running_bot(local, AGENTS) as teams:
        await set_channel(teams)
        refused = await card(teams, "fix_apply", FIX, ALEX)
        text = card_text(refused)
        assert "Your organization doesn't let you change this; I've told the helpdesk: ticket SD-1001" in text
        assert "Dynamics 365 refused it" in text and "prvCreateUserQuery" in text  # Dataverse's own words
        [applied] = await fixer(teams).history(ALEX)
        assert applied.state == "refused"
        ticket = await teams.app[BOT].helpdesk.tickets.get(1001)  # type: ignore[union-attr]
        assert ticket is not None and "prvCreateUserQuery" in ticket.comment and ticket.record_id == QUARTERLY
        await teams.settle()
        posted = card_text(teams.connector.created[-1]["activity"]["attachments"][0]["content"])
        assert "SD-1001" in posted and "prvCreateUserQuery" in posted
        # Pressed again: the same answer (the ticket it has already), never an error.
        again = await card(teams, "fix_apply", FIX, ALEX)
        assert "the helpdesk has it already in SD-1001" in card_text(again)


async def test_without_a_helpdesk_a_refusal_says_whom_to_ask(org_data: dict[str, Any]) -> None:
    org_data["$privileges"] = {ALEX_USER: ["prvReadActivity"]}
    async with quiet(org_data) as local, running_bot(local) as teams:
        assert teams.app is not None
        bot = teams.app[BOT]
        bot.services = replace(bot.services, helpdesk=None)  # a bot run with no helpdesk
        refused = await card(teams, "fix_apply", FIX, ALEX)
        assert "Your organization doesn't let you change this" in card_text(refused)
        assert messages.FIX_ASK_ADMIN in card_text(refused)


async def test_dataverse_down_says_so_and_try_again_applies(teams: Teams, org: LocalOrg) -> None:
    faults = org.running.sandbox.config.faults
    faults.append(Fault.parse({"route": "dataverse", "status": 503}))
    failed = await card(teams, "fix_apply", FIX, ALEX)
    assert "I couldn't reach Dynamics 365" in card_text(failed)
    retry = buttons(failed)["Try again"]
    assert (retry["verb"], retry["data"]) == ("fix_apply", FIX)
    faults.clear()
    done = await press(teams, retry, ALEX)
    assert isinstance(done, dict) and "Done. I'll check again" in card_text(done)


def applied_title(confirm: dict[str, Any]) -> str:
    """The fix's title, as the confirmation card shows it (its second line)."""
    return str(confirm["body"][1]["inlines"][0]["text"])


async def escalated_ticket_view(teams: Teams) -> dict[str, Any]:
    """Megan's mailbox ticket (ACT set to None), as an agent (Adele) sees it in the channel."""
    await set_channel(teams)
    data = {"user": MEGAN, "record": None, "type": "appointment", "comment": "nothing syncs"}
    await teams.press("escalate_send", data, user=MEGAN)
    await teams.settle()
    return await card(teams, "ticket_view", {"ticket": 1001}, ADELE)


async def test_an_agent_fixes_a_mailbox_from_the_ticket_card(org_data: dict[str, Any]) -> None:
    org_data["$privileges"] = {ADELE_USER: ["prvReadActivity", "prvWriteMailbox"]}
    async with quiet(org_data) as local, running_bot(local, AGENTS) as teams:
        view = await escalated_ticket_view(teams)
        assert visible(view) == ["Assign me", "Fix", "Resolve"] and "Re-run" in buttons(view)
        fix = buttons(view)["Fix"]
        assert fix["verb"] == "ticket_fix_offer" and fix["data"]["fix"] == "set-act-server-side-sync"
        # The channel's card, as everyone sees it, offers no fix: only the agent view does.
        posted = teams.connector.created[-1]["activity"]["attachments"][0]["content"]
        assert set(buttons(posted)) == {"Refresh"}
        confirm = await press(teams, fix, ADELE)
        assert isinstance(confirm, dict)
        text = card_text(confirm)
        assert (
            "Set Appointments, Contacts, and Tasks of the mailbox meganb@example.com from None to "
            "Server-Side Synchronization" in text.replace("\\", "")
        )
        assert buttons(confirm)["Cancel"]["verb"] == "ticket_view"
        done = await press(teams, buttons(confirm)["Confirm"], ADELE)
        assert isinstance(done, dict)
        text = card_text(done)
        assert f"Done: {applied_title(confirm)}. I'll check again after the next sync" in text
        assert "tell Megan Bowen how it went" in text
        assert "One-click fixes for this person" in text and "(done)" in text
        mailbox = local.running.sandbox.org.by_key("mailboxes", MEGAN_MAILBOX)
        assert mailbox is not None
        assert mailbox["actdeliverymethod"] == 1
        [applied] = await fixer(teams).history(MEGAN)
        assert applied.by == ADELE and applied.fix.who == "agent"


async def test_an_agent_without_the_privilege_is_told_what_dataverse_said(teams: Teams) -> None:
    view = await escalated_ticket_view(teams)
    refused = await press(teams, {"verb": "ticket_fix_apply", "data": buttons(view)["Fix"]["data"]}, ADELE)
    assert isinstance(refused, dict)
    text = card_text(refused)
    assert "Dynamics 365 refused it" in text and "prvWriteMailbox" in text and "SD-1001" in text
    assert "(refused by Dynamics 365)" in text  # listed on the ticket card


async def test_a_forged_ticket_card_fixes_nobody(org_data: dict[str, Any]) -> None:
    """A ticket card's Fix names the ticket with its person and record: one naming another person (it
    would list the fix on Megan's ticket) or a ticket that doesn't exist is refused before anything is read."""
    org_data["$privileges"] = {ADELE_USER: ["prvReadActivity", "prvWriteMailbox"]}
    async with quiet(org_data) as local, running_bot(local, AGENTS) as teams:
        view = await escalated_ticket_view(teams)
        megans = buttons(view)["Fix"]["data"]
        before = local.running.sandbox.counts["dataverse"]
        for forged in (
            {**megans, "user": ISAIAH, "fix": "schedule-mailbox-test"},  # Isaiah's fix on Megan's ticket
            {**megans, "record": QUARTERLY},  # another record
            {**megans, "ticket": 4242},  # no such ticket
        ):
            for verb in ("ticket_fix_offer", "ticket_fix_apply"):
                assert await press(teams, {"verb": verb, "data": forged}, ADELE) == messages.UNKNOWN_ACTION
        assert local.running.sandbox.counts["dataverse"] == before
        assert await fixer(teams).history() == []
        assert mailbox_of(local, ISAIAH_MAILBOX)["testemailconfigurationscheduled"] is False


async def test_someone_elses_undo_changes_nothing(teams: Teams, org: LocalOrg) -> None:
    """Undo names an application by its key: pressed by anyone but its person (an agent who wrote their
    own id into the card, to pass as its person), the filter stays on."""
    done = await card(teams, "fix_apply", FIX, ALEX)
    undo = buttons(done)["Undo"]
    forged = {**undo["data"], "user": MEGAN}
    assert await press(teams, {"verb": "fix_undo", "data": forged}, MEGAN) == messages.NOT_YOURS
    assert await press(teams, undo, MEGAN) == messages.NOT_YOURS  # the card's own: Alex's alone
    [made] = filters_named(org, "Appointments I own")
    assert made["statecode"] == 0
    [kept] = await fixer(teams).history(ALEX)
    assert kept.state == "applied"


async def test_a_fixed_mailbox_is_not_fixed_twice_from_a_stale_ticket_card(org_data: dict[str, Any]) -> None:
    org_data["$privileges"] = {ADELE_USER: ["prvReadActivity", "prvWriteMailbox"]}
    async with quiet(org_data) as local, running_bot(local, AGENTS) as teams:
        view = await escalated_ticket_view(teams)
        fix = buttons(view)["Fix"]
        await press(teams, {"verb": "ticket_fix_apply", "data": fix["data"]}, ADELE)
        # The same card's Fix again: the diagnosis run now (on the ticket) no longer has that cause; the
        # mailbox's next one is what the ticket offers to fix now (it was never tested).
        stale = await card(teams, "ticket_fix_offer", fix["data"], ADELE)
        text = card_text(stale)
        assert messages.FIX_NOT_APPLICABLE in text
        assert buttons(stale)["Fix"]["data"]["fix"] == "schedule-mailbox-test"
        assert "Appointments, Contacts, and Tasks are not set to synchronize" not in text
        # Its Confirm again: the first result, written once.
        again = await card(teams, "ticket_fix_apply", fix["data"], ADELE)
        assert "Done:" in card_text(again)
        assert len(await fixer(teams).history(MEGAN)) == 1


async def test_an_agents_view_of_someones_diagnosis_offers_no_fix_of_theirs(teams: Teams) -> None:
    # Megan (an agent) re-checks Alex's diagnosis: his filters are his to change, so no Fix it for me.
    shown = await card(teams, "recheck", {"user": ALEX, "record": QUARTERLY, "type": "appointment"}, MEGAN)
    assert "doesn't meet your synchronization filters" in card_text(shown)
    assert "Fix it for me" not in buttons(shown) and "Fix it for me" not in card_text(shown)


# --- Test & Enable: an agent's fix the person may try on their own mailbox ------------------------------


def mailbox_of(local: LocalOrg, mailbox: str) -> dict[str, Any]:
    row = local.running.sandbox.org.by_key("mailboxes", mailbox)
    assert row is not None
    return row


def test_the_person_may_press_exactly_the_fixes_they_may_make() -> None:
    """Fix it for me's verbs take the fix ids the service lets a person make for themselves (checked before
    anything is read): their filters, and Test & Enable of their own mailbox; never an agent's other fixes."""
    for fix_id in FIX_IDS:
        fix = Fix(fix_id, "f", "t", "self" if fix_id in SELF_FIXES else "agent", ())
        assert may_apply(fix, by=ISAIAH, person=ISAIAH, is_agent=False) is (fix_id in PERSON_FIXES), fix_id
        assert not may_apply(fix, by=ALEX, person=ISAIAH, is_agent=False), fix_id  # someone else's: never


async def test_isaiah_is_offered_test_and_enable_and_dataverse_refuses_it(
    teams: Teams, org: LocalOrg
) -> None:
    """Isaiah's mailbox was never tested: his card offers Test & Enable in his words. The sample org's roles
    don't let users write mailboxes, so Dataverse refuses it, as him: the helpdesk gets a ticket (the agent's
    job now, from its card), nothing changes."""
    await set_channel(teams)
    await teams.say("check my mailbox", user=ISAIAH, display_name=ISAIAH_NAME)
    [diagnosis] = teams.connector.cards()
    assert "Your mailbox was never tested and enabled" in card_text(diagnosis)
    assert visible(diagnosis) == ["Fix it for me", "Escalate"]
    offer = buttons(diagnosis)["Fix it for me"]
    assert offer["verb"] == "fix_offer" and offer["data"] == TEST_MAILBOX
    assert offer["tooltip"] == "Fix it for me: Test and enable my mailbox"
    assert "I can do it for you: **Fix it for me** (Test and enable my mailbox)" in card_text(diagnosis)

    confirm = await press(teams, offer, ISAIAH, ISAIAH_NAME)
    assert isinstance(confirm, dict)
    text = card_text(confirm).replace("\\", "")
    assert applied_title(confirm) == "Test and enable my mailbox"
    assert "Schedule Test & Enable for your mailbox (isaiahl@example.com)" in text
    assert "nothing changes if it says no" in text and "Undo" not in text
    assert buttons(confirm)["Confirm"]["data"] == TEST_MAILBOX

    refused = await press(teams, buttons(confirm)["Confirm"], ISAIAH, ISAIAH_NAME)
    assert isinstance(refused, dict)
    text = card_text(refused)
    assert "Your organization doesn't let you change this; I've told the helpdesk: ticket SD-1001" in text
    assert "Test and enable my mailbox" in text and "prvWriteMailbox" in text
    assert mailbox_of(org, ISAIAH_MAILBOX)["testemailconfigurationscheduled"] is False
    [applied] = await fixer(teams).history(ISAIAH)
    assert (applied.state, applied.by, applied.fix.id) == ("refused", ISAIAH, "schedule-mailbox-test")

    # The ticket is the helpdesk's: its agent view offers the same fix, to be made as the agent.
    await teams.settle()
    view = await card(teams, "ticket_view", {"ticket": 1001}, ADELE)
    fix = buttons(view)["Fix"]
    assert (fix["verb"], fix["data"]["fix"], fix["data"]["user"]) == (
        "ticket_fix_offer",
        "schedule-mailbox-test",
        ISAIAH,
    )
    assert "Isaiah Langer" in card_text(view) and "(refused by Dynamics 365)" in card_text(view)


async def test_only_isaiah_may_press_his_test_and_enable(teams: Teams, org: LocalOrg) -> None:
    before = org.running.sandbox.counts["dataverse"]
    for user in (ALEX, ADELE):  # an ordinary user, an agent: the card's buttons are its person's alone
        for verb in ("fix_offer", "fix_apply"):
            assert await press(teams, {"verb": verb, "data": TEST_MAILBOX}, user) == messages.NOT_YOURS
    assert org.running.sandbox.counts["dataverse"] == before
    # An agent re-checking Isaiah's diagnosis: no Fix it for me (the ticket card is an agent's way).
    shown = await card(teams, "recheck", {"user": ISAIAH, "record": None, "type": "appointment"}, ADELE)
    assert "never tested and enabled" in card_text(shown) and "Fix it for me" not in buttons(shown)
    assert await fixer(teams).history() == []


@asynccontextmanager
async def bot_drained_by_the_test(local: LocalOrg, settings: Settings) -> AsyncIterator[Teams]:
    """The bot whose outbox the test drains: no leader polling (`OUTBOX_LEADER` false) and an hour between
    the app's own rounds, so a check after a fix runs when the test drains, after the sync it runs."""
    store = SqliteStore(":memory:")
    async with running_connector() as connector:
        app = create_app(settings, clients=local.clients, store=store, delivery_interval=3600)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                yield Teams(http=http, connector=connector, app=app, store=store)
        finally:
            await runner.cleanup()
            await store.close()


async def test_isaiah_whose_roles_allow_it_tests_his_mailbox_and_hears_it_is_fixed(
    org_data: dict[str, Any],
) -> None:
    org_data["$privileges"] = {ISAIAH_USER: ["prvReadActivity", "prvWriteMailbox"]}
    settings = Settings(HELPDESK_AGENTS=f"{MEGAN},{ADELE}", FIX_RECHECK_AFTER="0.001", OUTBOX_LEADER=False)
    async with quiet(org_data) as local, bot_drained_by_the_test(local, settings) as teams:
        await teams.say("check my mailbox", user=ISAIAH, display_name=ISAIAH_NAME)
        [diagnosis] = teams.connector.cards()
        confirm = await press(teams, buttons(diagnosis)["Fix it for me"], ISAIAH, ISAIAH_NAME)
        assert isinstance(confirm, dict)
        done = await press(teams, buttons(confirm)["Confirm"], ISAIAH, ISAIAH_NAME)
        assert isinstance(done, dict)
        text = card_text(done).replace("\\", "")
        assert "Change made" in text and "Test and enable my mailbox" in text
        assert "Scheduled Test & Enable for your mailbox" in text and "Made by you" in text
        assert visible(done) == ["Re-check"]  # nothing to undo: the test runs once
        assert mailbox_of(local, ISAIAH_MAILBOX)["testemailconfigurationscheduled"] is True
        [applied] = await fixer(teams).history(ISAIAH)
        assert (applied.state, applied.by) == ("applied", ISAIAH)
        again = await card(teams, "fix_offer", TEST_MAILBOX, ISAIAH)  # the old card's button, pressed again
        assert "done once already" in card_text(again)

        # Server-side sync's next cycle runs the test; the check after the fix finds the mailbox fine.
        await local.running.sandbox.sync.run_now()
        assert mailbox_of(local, ISAIAH_MAILBOX)["actstatus"] == 1
        assert teams.store is not None
        worker = deliverer_for(settings, teams.store)  # as `python -m bot deliver` builds it
        register_followups(worker, Investigator(local.clients.dataverse, local.clients.graph))

        async def checked() -> bool:
            return await worker.drain() == 1  # due a millisecond after the fix

        await until(checked, "the check after the fix")
        told = [a.get("text") for a in teams.connector.sent if a.get("text")]
        assert told[-1] == "Fixed: nothing keeps your mailbox from syncing with Outlook any more."
        now = await press(teams, buttons(done)["Re-check"], ISAIAH, ISAIAH_NAME)
        assert isinstance(now, dict) and "Fix it for me" not in buttons(now)
        assert "never tested" not in card_text(now)


def test_the_changes_in_plain_words() -> None:
    mailbox = "b2000000-0000-4000-8000-000000000001"

    def words(*changes: Change) -> list[str]:
        return describe(Fix("approve-email", "x", "t", "agent", changes), mailbox="alex@contoso.com")

    assert words(Change("mailboxes", mailbox, "actdeliverymethod", 2, 1)) == [
        "Set Appointments, Contacts, and Tasks of the mailbox alex\\@contoso.com from None to "
        "Server-Side Synchronization"
    ]
    assert words(Change("mailboxes", mailbox, "emailrouteraccessapproval", 2, 1)) == [
        "Approve the email address of the mailbox alex\\@contoso.com (it was Pending Approval)"
    ]
    assert words(Change("mailboxes", mailbox, "testemailconfigurationscheduled", False, True))[0].startswith(
        "Schedule Test & Enable for the mailbox alex\\@contoso.com"
    )
    on = words(
        Change("userqueries", "q1", "statecode", 1, 0), Change("userqueries", "q1", "statuscode", 2, 1)
    )
    assert on == ["Turn your sync filter back on (it is off now)"]
    party = '<fetch><entity name="appointment"><link-entity name="activityparty"><filter>'
    party += '<condition attribute="partyid" operator="eq-userid" />'
    party += '<condition attribute="participationtypemask" operator="eq" value="6" /></filter></link-entity>'
    party += "</entity></fetch>"
    new = words(
        Change("userqueries", None, "name", None, "Appointments where I'm an optional attendee"),
        Change("userqueries", None, "fetchxml", None, party),
        Change("userqueries", None, "returnedtypecode", None, "appointment"),
    )
    assert new == [
        "Create a sync filter “Appointments where I'm an optional attendee” owned by you, selecting "
        "appointments where you're an optional attendee"
    ]


def test_the_ticket_card_offers_each_agent_fix_and_lists_what_was_done() -> None:
    act = Fix(
        "set-act-server-side-sync",
        "act-not-server-side-sync",
        "Set to Server-Side Synchronization",
        "agent",
        (Change("mailboxes", MEGAN_MAILBOX, "actdeliverymethod", 2, 1),),
    )
    test = Fix("schedule-mailbox-test", "mailbox-not-tested", "Run Test & Enable", "agent", ())
    own = Fix("add-filter", "outside-sync-filter", "Add a filter", "self", ())
    findings = [
        Finding("act-not-server-side-sync", "fail", "ACT is None", fixes=(act,)).to_dict(),
        Finding("mailbox-not-tested", "fail", "Never tested", fixes=(test,)).to_dict(),
        Finding("outside-sync-filter", "fail", "Outside", fixes=(own,)).to_dict(),
    ]
    ticket = Ticket(1001, "t", MEGAN, "Megan Bowen", "appointment", None, None, {"findings": findings}, "")
    before = to_dict(build_ticket_card(ticket, agents=["29:a"]))
    assert visible(before) == ["Assign me", "Fix", "Resolve"]
    assert [(a["title"], a.get("mode")) for a in before["actions"][3:]] == [
        ("Re-run", "secondary"),
        ("Fix: Test & Enable", "secondary"),
    ]
    assert [a["data"].get("fix") for a in before["actions"] if a["verb"] == "ticket_fix_offer"] == [
        "set-act-server-side-sync",
        "schedule-mailbox-test",  # the person's own fix (add-filter) is theirs: not offered to agents
    ]
    done = Applied("k" * 32, act, MEGAN, ADELE, "applied", datetime(2026, 11, 25, 18, tzinfo=UTC))
    view = to_dict(build_ticket_card(ticket, agents=["29:a"], fixes=[done]))
    # The fix made is not offered again; the next one takes its place.
    assert [a["data"].get("fix") for a in view["actions"] if a["verb"] == "ticket_fix_offer"] == [
        "schedule-mailbox-test"
    ]
    undone = replace(done, state="undone")
    again = to_dict(build_ticket_card(ticket, agents=["29:a"], fixes=[undone]))
    assert "set-act-server-side-sync" in [a["data"].get("fix") for a in again["actions"]]
    assert "- a helpdesk agent, {{DATE(2026-11-25T18:00:00Z, SHORT)}}" in card_text(view)  # no raw id
    assert "Set to Server-Side Synchronization (done)" in card_text(view)
    read_only = to_dict(build_ticket_card(ticket, for_agents=False, agents=["29:a"], fixes=[done]))
    assert set(buttons(read_only)) == {"Refresh"} and "(done)" in card_text(read_only)


async def test_a_slow_fix_is_answered_in_time_and_finishes_unseen(teams: Teams, org: LocalOrg) -> None:
    """Teams wants an invoke answered within 15 s: past the turn's budget the card says the change is being
    made, the write goes on (never cut halfway), and Check again shows how it went."""
    assert teams.app is not None
    bot = teams.app[BOT]
    bot.services = replace(bot.services, budget=0.05)  # the budget the work can't meet: every read is slower
    org.running.sandbox.config.faults.append(Fault.parse({"route": "dataverse", "latency": 0.1}))
    working = await card(teams, "fix_apply", FIX, ALEX)
    assert "Still working on it" in card_text(working)
    check = buttons(working)["Check again"]
    assert (check["verb"], check["data"]) == ("fix_apply", FIX)
    org.running.sandbox.config.faults.clear()
    bot.services = replace(bot.services, budget=11.0)

    async def applied() -> bool:
        return [a.state for a in await fixer(teams).history(ALEX)] == ["applied"]

    await until(applied, "the fix to finish after its turn")
    done = await press(teams, check, ALEX)
    assert isinstance(done, dict) and "done once already" in card_text(done)
    assert len(filters_named(org, "Appointments I own")) == 1


# --- after an independent review of the Teams side -------------------------------------------------------


def dataverse_requests(teams: Teams) -> int:
    return fixer(teams).investigator.dataverse.requests_sent


async def test_a_confirm_that_no_longer_applies_shows_the_diagnosis_it_was_decided_on(teams: Teams) -> None:
    """Teams' time limit: the answer is the diagnosis the service decided on, not a second one after it."""
    before = dataverse_requests(teams)
    await card(teams, "recheck", {"user": ALEX, "record": QUARTERLY, "type": "appointment"}, ALEX)
    one_diagnosis = dataverse_requests(teams) - before
    before = dataverse_requests(teams)
    shown = await card(teams, "fix_apply", {**FIX, "fix": "activate-filter"}, ALEX)  # he has none off
    assert messages.FIX_NOT_APPLICABLE in card_text(shown)
    assert "Quarterly review with Contoso" in card_text(shown)
    assert dataverse_requests(teams) - before <= one_diagnosis


async def test_a_refused_fix_opens_its_ticket_with_the_diagnosis_it_came_from(
    org_data: dict[str, Any],
) -> None:
    org_data["$privileges"] = {ALEX_USER: ["prvReadActivity"]}  # not even his own filters
    async with quiet(org_data) as local, running_bot(local, AGENTS) as teams:
        await set_channel(teams)
        before = dataverse_requests(teams)
        await card(teams, "recheck", {"user": ALEX, "record": QUARTERLY, "type": "appointment"}, ALEX)
        one_diagnosis = dataverse_requests(teams) - before
        before = dataverse_requests(teams)
        refused = await card(teams, "fix_apply", FIX, ALEX)
        assert "Your organization doesn't let you change this" in card_text(refused)
        assert dataverse_requests(teams) - before <= one_diagnosis + 1  # the diagnosis, and the refused POST
        ticket = await teams.app[BOT].services.helpdesk.tickets.get(1001)  # type: ignore[union-attr]
        assert ticket is not None and "outside-sync-filter" in str(ticket.report)


def isaiah_owner_only(org_data: dict[str, Any]) -> dict[str, Any]:
    """Isaiah only owns "Budget planning" (Patti organizes it), and his mailbox was never tested."""
    for party in org_data["activityparties"]:
        if party["activitypartyid"] == "d4000000-0000-4000-8000-000000000012":
            party["_partyid_value"] = "a1000000-0000-4000-8000-000000000005"
    return org_data


async def test_the_persons_own_fix_comes_before_one_an_agent_can_make_too(org_data: dict[str, Any]) -> None:
    """Test & Enable is an agent's fix the person may also try; refused, it goes to the helpdesk. Their own
    filter only they can make: it is offered first, so a refusal never leaves them without it."""
    async with quiet(isaiah_owner_only(org_data)) as local, running_bot(local, AGENTS) as teams:
        budget = "c3000000-0000-4000-8000-000000000005"
        shown = await card(
            teams, "recheck", {"user": ISAIAH, "record": budget, "type": "appointment"}, ISAIAH
        )
        assert buttons(shown)["Fix it for me"]["data"]["fix"] == "add-filter"


async def test_an_agents_fix_needs_the_open_ticket_its_card_names(org_data: dict[str, Any]) -> None:
    org_data["$privileges"] = {ADELE_USER: ["prvReadActivity", "prvWriteMailbox"]}
    async with quiet(org_data) as local, running_bot(local, AGENTS) as teams:
        view = await escalated_ticket_view(teams)
        fix = buttons(view)["Fix"]["data"]
        forged = await press(teams, {"verb": "ticket_fix_apply", "data": {**fix, "ticket": None}}, ADELE)
        assert forged == messages.UNKNOWN_ACTION  # a fix on no ticket: a forged card
        resolve = {**buttons(view)["Resolve"]["data"], "note": "done"}
        assert "Resolved" in card_text(await card(teams, "ticket_resolve", resolve, ADELE))
        stale = await press(teams, {"verb": "ticket_fix_apply", "data": fix}, ADELE)
        assert stale == messages.TICKET_CLOSED_FIX.format(key="SD-1001")
        assert mailbox_of(local, MEGAN_MAILBOX)["actdeliverymethod"] == 2  # None, as before: nothing written


async def test_a_throttled_confirm_says_when_to_try_again(teams: Teams, org: LocalOrg) -> None:
    org.running.sandbox.config.faults.append(
        Fault.parse({"route": "dataverse", "status": 429, "retry_after": 600})
    )
    text = card_text(await card(teams, "fix_apply", FIX, ALEX))
    assert "Dynamics 365 asked me to wait" in text and "try again after" in text.lower()
    assert "couldn't reach" not in text and "in a minute" not in text


async def test_a_refused_attempt_stays_on_record_after_an_agent_makes_the_fix(
    org_data: dict[str, Any],
) -> None:
    """Each application is recorded: Isaiah's refused Test & Enable stays beside the agent's success."""
    org_data["$privileges"] = {ADELE_USER: ["prvReadActivity", "prvWriteMailbox"]}
    async with quiet(org_data) as local, running_bot(local, AGENTS) as teams:
        await set_channel(teams)
        await card(teams, "fix_apply", TEST_MAILBOX, ISAIAH)
        assert [a.state for a in await fixer(teams).history(ISAIAH)] == ["refused"]
        await teams.settle()
        view = await card(teams, "ticket_view", {"ticket": 1001}, ADELE)
        await card(teams, "ticket_fix_apply", buttons(view)["Fix"]["data"], ADELE)
        kept = [(a.state, a.by) for a in await fixer(teams).history(ISAIAH)]
        assert kept == [("applied", ADELE), ("refused", ISAIAH)]  # newest first
        assert mailbox_of(local, ISAIAH_MAILBOX)["testemailconfigurationscheduled"] is True
