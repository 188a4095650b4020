"""Nobody acts beyond their rights: forged card data, other tenants, floods of escalations; and a store
that is down costs only what needs it (a diagnosis still answers)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import bot.store.sqlite as sqlite_store
from bot.config import Settings
from bot.helpdesk.book import TicketBook
from bot.helpdesk.desk import MAX_OPEN_TICKETS
from bot.sandbox import LocalOrg
from bot.store import SqliteStore
from bot.teams import messages
from tests.support.cards import card_text
from tests.support.helpdesk import AGENTS, set_channel
from tests.support.org import ALEX, MEGAN, QUARTERLY, make_local
from tests.support.teams import BOT_ID, TENANT, running_bot

FABRIKAM_KICKOFF = "c3000000-0000-4000-8000-000000000003"  # Megan's; Alex neither owns it nor takes part
WEEKLY_SYNC = "c3000000-0000-4000-8000-000000000002"
OTHER_TENANT = "99999999-0000-0000-0000-000000000099"


async def test_a_forged_record_id_shows_nothing_the_presser_may_not_read(local: LocalOrg) -> None:
    async with running_bot(local, AGENTS) as teams:
        for verb in ("pick", "recheck"):
            data = {"user": ALEX, "record": FABRIKAM_KICKOFF, "type": "appointment"}
            answer = (await teams.press(verb, data, user=ALEX)).json()
            shown = json.dumps(answer)
            assert "Fabrikam kickoff" not in shown
            assert "Megan" not in shown  # nor whose it is: only an agent is told that
            # Dataverse refused it as Alex: that it exists is all he learns, and that it's why it won't sync.
            assert "can't open this appointment" in card_text(answer["value"])
        await set_channel(teams)
        data = {"user": ALEX, "record": FABRIKAM_KICKOFF, "type": "appointment", "comment": "look"}
        assert (await teams.press("escalate_send", data, user=ALEX)).status_code == 200
        await teams.settle()
        assert teams.store is not None
        [ticket] = await TicketBook(teams.store).find(user_aad=ALEX)
        assert ticket.subject is None
        assert "Fabrikam kickoff" not in json.dumps(ticket.report)
        assert "Fabrikam kickoff" not in json.dumps(teams.connector.created)
        # Megan, whose record it is, sees it: the same id read as her.
        mine = (await teams.press("pick", {**data, "user": MEGAN}, user=MEGAN)).json()
        assert "Fabrikam kickoff" in json.dumps(mine)


async def test_a_flood_of_escalations_opens_one_ticket_per_record_and_a_few_at_most(local: LocalOrg) -> None:
    async with running_bot(local, AGENTS) as teams:
        await set_channel(teams)
        data = {"user": ALEX, "record": QUARTERLY, "type": "appointment", "comment": "again"}
        answers = await asyncio.gather(*(teams.press("escalate_send", data, user=ALEX) for _ in range(20)))
        bodies = [a.json() for a in answers]
        assert all(a.status_code == 200 for a in answers)
        assert teams.store is not None
        assert len(await teams.store.list_tickets(user_aad=ALEX)) == 1
        already = [b for b in bodies if "open about this" in json.dumps(b)]
        assert len(already) == 19
        # Other records each get a ticket, up to the limit; then a clear refusal.
        others = [WEEKLY_SYNC, FABRIKAM_KICKOFF, "c3000000-0000-4000-8000-000000000004"]
        for record in others[: MAX_OPEN_TICKETS - 1]:
            await teams.press("escalate_send", {**data, "record": record}, user=ALEX)
        refused = (await teams.press("escalate_send", {**data, "record": others[-1]}, user=ALEX)).json()
        assert refused["value"] == messages.TOO_MANY_TICKETS.format(count=MAX_OPEN_TICKETS)
        await teams.settle()
        assert len(await teams.store.list_tickets(user_aad=ALEX)) == MAX_OPEN_TICKETS
        assert len(teams.connector.created) == MAX_OPEN_TICKETS  # one channel thread per ticket


async def test_other_tenants_get_no_welcome_and_disagreeing_tenant_ids_are_refused(local: LocalOrg) -> None:
    async with running_bot(local, Settings(ALLOWED_TENANTS=TENANT)) as teams:
        install = teams.activity("conversationUpdate", user=ALEX, membersAdded=[{"id": BOT_ID}])
        install["conversation"]["tenantId"] = OTHER_TENANT
        install["channelData"] = {"tenant": {"id": OTHER_TENANT}}
        await teams.send(install)
        assert teams.connector.sent == []  # no welcome card for another tenant
        mixed = teams.activity(user=ALEX, text="check my mailbox")
        mixed["conversation"]["tenantId"] = OTHER_TENANT  # channelData still names the allowed tenant
        await teams.send(mixed)
        assert teams.connector.texts() == [messages.TENANT_REFUSED]
        assert teams.connector.cards() == []  # nothing was read or diagnosed
        assert teams.store is not None
        assert await teams.store.find_reference(ALEX) is None  # nor remembered


@pytest.fixture
def locked_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sqlite3.Connection:
    """Another process holds the store's write lock (SQLite waits only briefly for it here)."""
    monkeypatch.setattr(sqlite_store, "LOCK_WAIT", 0.2)
    other = sqlite3.connect(tmp_path / "store.sqlite3", isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    return other


async def test_a_locked_store_still_gets_a_diagnosis_and_an_honest_escalation(
    local: LocalOrg, tmp_path: Path, locked_store: sqlite3.Connection
) -> None:
    store = SqliteStore(str(tmp_path / "store.sqlite3"))
    locked_store.execute("BEGIN EXCLUSIVE")
    try:
        async with running_bot(local, AGENTS, store=store) as teams:
            await teams.say("check my mailbox", user=ALEX)
            assert len(teams.connector.cards()) == 1  # the diagnosis
            assert messages.CONVERSATION_NOT_KEPT in teams.connector.texts()
            data = {"user": ALEX, "record": QUARTERLY, "type": "appointment", "comment": "help"}
            answer = (await teams.press("escalate_send", data, user=ALEX)).json()
            assert answer["value"] == messages.TICKET_NOT_SAVED
            muted = (await teams.press("mute", {"user": ALEX}, user=ALEX)).json()
            assert muted["value"] == messages.STORE_DOWN
    finally:
        locked_store.execute("ROLLBACK")
        locked_store.close()
        await store.close()


async def test_card_data_never_reaches_the_log(local: LocalOrg, caplog: pytest.LogCaptureFixture) -> None:
    forged = "x\n2026-11-30 CRITICAL bot: forged line"
    async with running_bot(local, AGENTS) as teams:
        await teams.press("recheck", {"user": forged, "record": QUARTERLY, "note": forged}, user=ALEX)
        await teams.press(forged, {"user": ALEX, "subject": forged}, user=ALEX)
        await teams.say(f"diagnose megan@contoso.com {forged}", user=MEGAN)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "forged" not in logged
    assert "megan@contoso.com" not in logged


def test_text_logs_escape_what_a_message_carries() -> None:
    import logging

    from bot.observability import TextFormatter

    record = logging.LogRecord(
        "bot", logging.WARNING, __file__, 1, "got %s", ("a\nCRITICAL forged\r\x1b[2J",), None
    )
    line = TextFormatter().format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.endswith("got a\\nCRITICAL forged\\r\\x1b[2J")


async def test_a_dataverse_retry_after_is_remembered_across_turns(org_data: dict[str, Any]) -> None:
    from bot.sandbox import SandboxConfig
    from bot.sandbox.server import Fault

    throttled = Fault(route="dataverse", status=429, retry_after=30)
    async with (
        make_local(org_data, SandboxConfig(faults=[throttled])) as local,
        running_bot(local, Settings()) as teams,
    ):
        await teams.say("check my mailbox", user=ALEX)
        first = throttled.hits  # round 1's reads, all sent at once before the first 429 came back
        for _ in range(29):
            await teams.say("check my mailbox", user=ALEX)
        cards = [card_text(c) for c in teams.connector.cards()]
        assert len(cards) == 30
        assert all("try again after" in c for c in cards)  # the checklist, with when to try again
        assert 1 <= first <= 4
        assert throttled.hits == first  # then Dataverse was left alone until Retry-After passes


async def test_another_tenants_invoke_is_refused_with_403_not_501(local: LocalOrg) -> None:
    async with running_bot(local, Settings(ALLOWED_TENANTS=TENANT)) as teams:
        fetch = teams.activity("invoke", user=ALEX, name="tab/fetch", value={})
        fetch["conversation"]["tenantId"] = OTHER_TENANT
        fetch["channelData"] = {"tenant": {"id": OTHER_TENANT}}
        assert (await teams.send(fetch)).status_code == 403
