"""Whole Teams turns through CloudAdapter, against the sandbox org, with a loopback Bot Connector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.config import Settings
from bot.sandbox import LocalOrg
from bot.teams import messages
from tests.support.cards import buttons, card_text
from tests.support.org import ALEX, MEGAN, PLAYGROUND, QUARTERLY, make_local
from tests.support.teams import BOT_ID, Teams, running_bot


@pytest.fixture
async def teams(local: LocalOrg) -> AsyncIterator[Teams]:
    async with running_bot(local) as running:
        yield running


async def test_welcome_card_when_installed(teams: Teams) -> None:
    update = teams.activity("conversationUpdate", user=ALEX, membersAdded=[{"id": BOT_ID}])
    response = await teams.send(update)
    assert response.status_code in (200, 201)
    [card] = teams.connector.cards()
    assert "Hi Alex, I'm Sync Doctor" in card_text(card)
    assert "Check my mailbox" in buttons(card)


async def test_no_welcome_when_someone_else_joins(teams: Teams) -> None:
    await teams.send(teams.activity("conversationUpdate", user=ALEX, membersAdded=[{"id": "29:someone"}]))
    assert teams.connector.sent == []


async def test_slow_work_shows_typing_first(org_data: dict[str, Any]) -> None:
    org_data["$faults"] = [{"route": "dataverse", "latency": 0.4}]
    async with make_local(org_data) as local, running_bot(local) as teams:
        await teams.say("why isn't my appointment in Outlook?", user=MEGAN, display_name="Megan Bowen")
        assert teams.connector.types() == ["typing", "message"]


async def test_mailbox_cause_answered_at_once(teams: Teams, monkeypatch: pytest.MonkeyPatch) -> None:
    # "Quick" is whatever comes before the typing delay: set far off, so a busy machine can't make it slow.
    monkeypatch.setattr("bot.teams.routes.TYPING_AFTER", 60.0)
    await teams.say("why isn't my appointment in Outlook?", user=MEGAN, display_name="Megan Bowen")
    assert teams.connector.types() == ["message"]  # quick: no typing indicator needed
    [card] = teams.connector.cards()
    text = card_text(card)
    assert "Appointments, Contacts, and Tasks are not set to synchronize" in text
    assert "Server-Side Synchronization" in text  # the steps
    assert set(buttons(card)) == {"Re-check", "Escalate", "All checks"}
    assert buttons(card)["Re-check"]["type"] == "Action.Execute"


async def test_healthy_mailbox_asks_which_record(teams: Teams) -> None:
    await teams.say("why isnt my appt in outlook", user=ALEX)
    [card] = teams.connector.cards()
    choices = next(e for e in card["body"] if e["type"] == "Input.ChoiceSet")["choices"]
    titles = [c["title"] for c in choices]
    assert any("Quarterly review with Contoso" in t for t in titles)
    assert len(titles) <= 10
    assert buttons(card)["Check this one"]["verb"] == "pick"


async def test_words_from_the_subject_pick_the_record(teams: Teams) -> None:
    await teams.say("Quartely reveiw isn't on my calendar", user=ALEX)  # typos on purpose
    [card] = teams.connector.cards()
    text = card_text(card)
    assert "Quarterly review with Contoso" in text
    assert "doesn't meet your synchronization filters" in text
    assert "owner" in text


async def test_picking_from_the_picker_answers_in_place(teams: Teams) -> None:
    response = await teams.press(
        "pick", {"type": "appointment", "user": ALEX, "record": QUARTERLY}, user=ALEX
    )
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "doesn't meet your synchronization filters" in card_text(body["value"])


async def test_recheck_updates_the_card_with_fresh_data(local: LocalOrg) -> None:
    async with running_bot(local) as teams:
        data = {"type": "appointment", "user": ALEX, "record": QUARTERLY, "show_all": False}
        first = (await teams.press("recheck", data, user=ALEX)).json()["value"]
        assert "doesn't meet your synchronization filters" in card_text(first)
        # The user becomes a required attendee (the article's fix): re-check now passes the filter.
        local.running.sandbox.org.tables["activityparties"].append(
            {
                "activitypartyid": "d4000000-0000-4000-8000-000000009999",
                "_activityid_value": QUARTERLY,
                "_partyid_value": "a1000000-0000-4000-8000-000000000001",
                "participationtypemask": 5,
            }
        )
        second = (await teams.press("recheck", data, user=ALEX)).json()["value"]
        assert "doesn't meet your synchronization filters" not in card_text(second)
        assert "Nothing blocks sync" in card_text(second) or "Everything" in card_text(second)


async def test_show_all_checks_toggles(teams: Teams) -> None:
    data = {"type": "appointment", "user": ALEX, "record": QUARTERLY, "show_all": True}
    card = (await teams.press("details", data, user=ALEX)).json()["value"]
    assert "Every check" in card_text(card) and "Show less" in buttons(card)
    hidden = (await teams.press("details", {**data, "show_all": False}, user=ALEX)).json()["value"]
    assert "Every check" not in card_text(hidden) and "All checks" in buttons(hidden)


async def test_someone_elses_card_is_refused(teams: Teams) -> None:
    response = await teams.press(
        "recheck", {"type": "appointment", "user": ALEX, "record": QUARTERLY}, user=MEGAN
    )
    body = response.json()
    assert body == {
        "statusCode": 200,
        "type": "application/vnd.microsoft.activity.message",
        "value": messages.NOT_YOURS,
    }


@pytest.mark.parametrize(
    ("verb", "data"),
    [
        ("launch-missiles", {"user": ALEX}),
        ("recheck", {"user": ALEX, "record": "' or 1 eq 1"}),
        ("pick", {"user": ALEX}),
    ],
)
async def test_forged_or_incomplete_card_data_gets_a_clear_answer(
    teams: Teams, verb: str, data: dict[str, Any]
) -> None:
    body = (await teams.press(verb, data, user=ALEX)).json()
    assert body["type"] == "application/vnd.microsoft.activity.message"
    assert body["value"] == messages.UNKNOWN_ACTION


async def test_escalate_asks_for_a_comment_first(teams: Teams) -> None:
    body = (
        await teams.press(
            "escalate", {"user": ALEX, "record": QUARTERLY, "subject": "Quarterly review"}, user=ALEX
        )
    ).json()
    card = body["value"]
    assert "Escalate to the helpdesk" in card_text(card) and "“Quarterly review”" in card_text(card)
    assert buttons(card)["Send to helpdesk"]["verb"] == "escalate_send"


async def test_unknown_invoke_name_is_501(teams: Teams) -> None:
    response = await teams.send(
        teams.activity("invoke", user=ALEX, name="composeExtension/fetchTask", value={})
    )
    assert response.status_code == 501 or response.json().get("status") == 501


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("", "What I can do"),
        ("<at>Sync Doctor</at>", "What I can do"),
        ("help", "What I can do"),
        ("hello", "I'm Sync Doctor"),
        ("thanks!", messages.THANKS),
        ("what's the weather", messages.OUT_OF_SCOPE),
        ("x" * 10_000, messages.OUT_OF_SCOPE),
    ],
)
async def test_small_talk_and_bad_input(teams: Teams, text: str, expect: str) -> None:
    response = await teams.say(text, user=ALEX)
    assert response.status_code in (200, 201)
    shown = teams.connector.texts() + [card_text(c) for c in teams.connector.cards()]
    assert any(expect in s for s in shown), shown


async def test_attachment_without_text(teams: Teams) -> None:
    await teams.send(
        teams.activity(user=ALEX, attachments=[{"contentType": "image/png", "contentUrl": "https://x/y.png"}])
    )
    assert teams.connector.texts() == [messages.ATTACHMENTS_ONLY]


async def test_message_without_an_entra_id(teams: Teams) -> None:
    await teams.say("why isn't my appointment in outlook", user=None)
    assert teams.connector.texts() == [messages.NO_IDENTITY]


async def test_unknown_user_gets_the_teams_user_unknown_card(teams: Teams) -> None:
    await teams.say("appointment not syncing", user=PLAYGROUND + "99", display_name="Stranger")
    [card] = teams.connector.cards()
    assert "No Dynamics 365 user is linked" in card_text(card)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ('{"no": "type"}', "application/json", 400),
        ("hi", "text/plain", 415),
    ],
)
async def test_malformed_requests_get_a_clean_4xx(
    teams: Teams, body: str, content_type: str, status: int
) -> None:
    response = await teams.http.post("/api/messages", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    follow_up = await teams.say("help", user=ALEX)  # and the bot keeps serving
    assert follow_up.status_code in (200, 201)


async def test_unsupported_activity_types_are_ignored(teams: Teams) -> None:
    response = await teams.send(
        teams.activity("messageReaction", user=ALEX, reactionsAdded=[{"type": "like"}])
    )
    assert response.status_code in (200, 201)
    assert teams.connector.sent == []


async def test_other_tenants_read_no_data(local: LocalOrg) -> None:
    settings = Settings(ALLOWED_TENANTS="11111111-1111-4111-8111-111111111111")
    async with running_bot(local, settings) as teams:
        before = local.running.sandbox.counts["dataverse"]
        await teams.say("why isn't my appointment in outlook", user=ALEX)
        assert teams.connector.texts() == [messages.TENANT_REFUSED]
        assert local.running.sandbox.counts["dataverse"] == before


async def test_with_an_app_id_unauthenticated_requests_get_401(local: LocalOrg) -> None:
    settings = Settings(MicrosoftAppId="11111111-2222-4333-8444-555555555555", MicrosoftAppPassword="x")
    async with running_bot(local, settings) as teams:
        response = await teams.say("help", user=ALEX)
        assert response.status_code == 401
        assert teams.connector.sent == []


async def test_dataverse_down_gives_the_checklist_card_in_time(org_data: dict[str, Any]) -> None:
    from bot.clients.http import RetryPolicy

    org_data["$faults"] = [{"route": "dataverse", "status": 503}]
    policy = RetryPolicy(budget=3, attempt_timeout=1, max_attempts=3, base_delay=0.05, max_delay=0.1)
    async with (
        make_local(org_data, policy=policy) as local,
        running_bot(local, Settings(DIAGNOSIS_BUDGET_SECONDS=3)) as teams,
    ):
        response = await teams.say("why isn't my appointment in outlook", user=ALEX)
        assert response.status_code in (200, 201)
        [card] = teams.connector.cards()
        assert "I couldn't check Dynamics 365 just now" in card_text(card)
        assert "Try again" in buttons(card)


async def test_contacts_question_checks_contacts(teams: Teams) -> None:
    await teams.say("my contacts dont sync, Ray Ortiz is missing", user=ALEX)
    [card] = teams.connector.cards()
    text = card_text(card)
    assert "Ray Ortiz (Fabrikam)" in text or "Which contact" in text
