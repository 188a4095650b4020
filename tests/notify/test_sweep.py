"""The proactive sweep: who is affected (as diagnose says), told once, muted, told when fixed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from typing import Any

import pytest

from bot.config import Settings
from bot.diagnosis import MAILBOX_RULE_IDS, Finding
from bot.helpdesk.senders import register_senders
from bot.investigation import Investigator
from bot.notify.outbox import SendLimiter, deliverer_for
from bot.notify.sweep import run_sweep
from bot.sandbox import SAMPLE_ORG, LocalOrg
from bot.store import SqliteStore
from tests.support.org import MEGAN, PLAYGROUND, make_local
from tests.support.teams import Connector, running_connector

ISAIAH = PLAYGROUND + "23"


def reference(connector: Connector, user: str) -> dict[str, Any]:
    return {
        "conversation": {"id": f"a:chat-{user[-2:]}", "conversationType": "personal", "tenantId": "t1"},
        "serviceUrl": connector.url,
        "channelId": "msteams",
        "bot": {"id": "28:bot"},
        "user": {"id": f"29:{user}", "aadObjectId": user},
    }


async def test_dry_run_agrees_with_diagnose_and_reads_in_pages(local: LocalOrg, store: SqliteStore) -> None:
    result = await run_sweep(local.clients.dataverse, store, dry_run=True)
    out = result.dry_run_json()
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    for person in out["affected"]:
        report = await investigator.run(person["aad_object_id"])
        assert person["causes"] == [c for c in report.causes if c in MAILBOX_RULE_IDS]
    emails = {p["email"] for p in out["affected"]}
    assert {"meganb@example.com", "isaiahl@example.com", "pattif@example.com", "leeg@example.com"} <= emails
    assert "alexw@example.com" not in emails and "adelev@example.com" not in emails  # healthy mailboxes
    assert out["dataverse_requests"] == result.pages + 1 == 2  # the pages, and the org's approval setting
    assert out["reachable"] == 0 and out["unreachable"] == len(out["affected"])
    assert await store.outbox_status() == {}  # a dry run writes nothing


async def test_requests_grow_with_pages_not_users(sample_data: dict[str, Any], store: SqliteStore) -> None:
    data = json.loads(json.dumps(sample_data))
    template = next(u for u in data["systemusers"] if u["fullname"] == "Megan Bowen")
    for n in range(1, 1201):  # 1,200 more users, no mailbox each
        data["systemusers"].append(
            {
                **template,
                "systemuserid": f"a2000000-0000-4000-8000-{n:012d}",
                "_defaultmailbox_value": None,
                "azureactivedirectoryobjectid": f"0f000000-0000-4000-8000-{n:012d}",
                "internalemailaddress": f"u{n}@example.com",
            }
        )
    async with make_local(data) as local:
        local.clients.dataverse._page_size = 500
        result = await run_sweep(local.clients.dataverse, store, dry_run=True)
    assert result.pages == 3
    assert result.dataverse_requests == result.pages + 1  # <= pages + 3: and the org's approval setting
    assert len(result.affected) >= 1200


async def deliver(store: SqliteStore) -> int:
    deliverer = deliverer_for(Settings(), store)
    register_senders(deliverer)
    total = 0
    try:
        for _ in range(5):
            total += await deliverer.drain()
    finally:
        await deliverer.resign()  # as `sweep` does: the next process leads at once
    return total


async def test_told_once_muted_and_told_when_fixed(local: LocalOrg, store: SqliteStore) -> None:
    async with running_connector() as connector:
        await store.save_reference("t1", MEGAN, reference(connector, MEGAN))
        await store.save_reference("t1", ISAIAH, reference(connector, ISAIAH))
        first = await run_sweep(local.clients.dataverse, store, dry_run=False)
        assert first.reachable == 2 and first.queued == 2
        assert await deliver(store) >= 2
        cards = [a["attachments"][0]["content"] for a in connector.sent if a.get("attachments")]
        assert len(cards) == 2
        assert any(
            "Appointments, Contacts, and Tasks are not set to synchronize" in json.dumps(c) for c in cards
        )
        assert {b["title"] for b in cards[0]["actions"]} == {"Re-check", "Notify me", "Mute"}

        again = await run_sweep(local.clients.dataverse, store, dry_run=False)  # nothing new: nothing sent
        assert again.queued == 0 and again.already_told == 2
        await deliver(store)
        assert len([a for a in connector.sent if a.get("attachments")]) == 2

        await store.set_setting(f"mute:{ISAIAH.lower()}", {"since": "now"})
        await store.set_setting(
            f"watch:{MEGAN.lower()}", {"causes": ["act-not-server-side-sync"], "since": "t0"}
        )
        mailbox = next(
            m
            for m in local.running.sandbox.org.rows("mailboxes")
            if m["emailaddress"] == "meganb@example.com"
        )
        mailbox["actdeliverymethod"], mailbox["actstatus"] = 1, 1  # the admin fixed Megan's mailbox
        third = await run_sweep(local.clients.dataverse, store, dry_run=False)
        assert third.muted == 1 and third.fixed == 1
        await deliver(store)
        fixed = [a["text"] for a in connector.sent if "is fixed" in (a.get("text") or "")]
        assert len(fixed) == 1
        fourth = await run_sweep(local.clients.dataverse, store, dry_run=False)
        await deliver(store)
        assert (
            fourth.fixed == 0 and len([a for a in connector.sent if "is fixed" in (a.get("text") or "")]) == 1
        )


async def test_the_outbox_keeps_each_finding_as_the_report_writes_it(
    local: LocalOrg, store: SqliteStore
) -> None:
    await store.save_reference("t1", MEGAN, {"conversation": {"id": "a:chat"}})
    await run_sweep(local.clients.dataverse, store, dry_run=False)
    [entry] = [e for e in await store.claim_due(limit=10, lease_seconds=60) if e.kind == "notify_problem"]
    kept = entry.payload["finding"]
    assert set(kept) == {"id", "status", "title", "evidence", "steps", "source", "fixes"}  # Finding.to_dict()
    assert Finding.from_dict(kept).to_dict() == kept
    # the dedupe key is the same as before findings stayed typed, so nobody is told twice after an upgrade
    evidence = json.dumps(kept["evidence"], sort_keys=True, default=str)
    digest = hashlib.sha256(f"{kept['id']}|{evidence}".encode()).hexdigest()[:16]
    assert entry.dedupe_key == f"notify:{MEGAN.lower()}:{kept['id']}:{digest}"


async def test_a_notice_queued_by_an_older_version_still_delivers(store: SqliteStore) -> None:
    async with running_connector() as connector:
        await store.save_reference("t1", MEGAN, reference(connector, MEGAN))
        finding = {
            "id": "act-not-server-side-sync",
            "status": "fail",
            "title": "Appointments, Contacts, and Tasks are not set to synchronize",
            "evidence": {"appointments_contacts_tasks": "None"},
            "steps": ["Open the mailbox."],
            "source": "https://support.microsoft.com/help/4509420",
        }
        payload = {"tenant": "t1", "user": MEGAN, "finding": finding}
        assert await store.enqueue("notify:old-entry", "notify_problem", payload)
        assert await deliver(store) == 1
        [card] = [a["attachments"][0]["content"] for a in connector.sent if a.get("attachments")]
        assert finding["title"] in json.dumps(card) and "1. Open the mailbox." in json.dumps(card)
        assert card["actions"][0]["data"]["cause"] == "act-not-server-side-sync"


async def test_one_sweep_at_a_time(local: LocalOrg, store: SqliteStore) -> None:
    assert await store.acquire_lease("sweep", "someone-else", 60)
    with pytest.raises(RuntimeError, match="another sweep is running"):
        await run_sweep(local.clients.dataverse, store, dry_run=False)
    await store.release_lease("sweep", "someone-else")
    await run_sweep(local.clients.dataverse, store, dry_run=False)


def test_cli_dry_run_json_contract(tmp_path: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "sweep", "--dry-run", "--fixture", str(SAMPLE_ORG), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"STORE_URL": f"sqlite:///{tmp_path / 's.sqlite3'}", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"affected", "reachable", "unreachable", "dataverse_requests"}
    assert all(set(a) == {"aad_object_id", "email", "causes"} for a in out["affected"])


async def test_unreachable_people_are_reported_to_the_helpdesk_once(
    local: LocalOrg, store: SqliteStore
) -> None:
    async with running_connector() as connector:
        channel = {"channel_id": "19:helpdesk", "service_url": connector.url, "bot_id": "28:bot"}
        await store.set_setting("helpdesk_channel:default", channel)
        result = await run_sweep(local.clients.dataverse, store, dry_run=False)
        await deliver(store)
        [report] = connector.created
        text = json.dumps(report["activity"])
        assert "Sync sweep: delivery report" in text
        assert f'"title": "Can\'t reach yet", "value": "{result.unreachable}"' in text
        assert "act-not-server-side-sync" in text and "Megan Bowen" in text
        await run_sweep(local.clients.dataverse, store, dry_run=False)  # same people, nothing new: quiet
        await deliver(store)
        assert len(connector.created) == 1


async def test_uninstalled_or_blocked_is_final(local: LocalOrg, store: SqliteStore) -> None:
    async with running_connector() as connector:
        await store.save_reference("t1", MEGAN, reference(connector, MEGAN))
        connector.failures = [403]
        await run_sweep(local.clients.dataverse, store, dry_run=False)
        await deliver(store)
        assert connector.sent == []
        assert (await store.outbox_status()).get("dead") == 1


async def test_delivery_keeps_to_the_per_conversation_limit() -> None:
    limiter = SendLimiter(per_tenant=50, per_conversation=7)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(14):  # one conversation: paced under 7 a second
        await limiter.wait("a:one-chat")
    one_chat = loop.time() - started
    started = loop.time()
    for n in range(14):  # different people: only the per-tenant 50/s applies
        await limiter.wait(f"a:chat-{n}")
    many_chats = loop.time() - started
    assert one_chat >= 13 / 7  # never faster than Teams allows one conversation
    assert many_chats < one_chat / 2


async def test_an_unapproved_address_is_no_cause_where_the_org_does_not_require_approval(
    sample_data: dict[str, Any], store: SqliteStore
) -> None:
    """The sweep and a diagnosis judge alike: nobody is told to get an approval the org doesn't need."""
    data = json.loads(json.dumps(sample_data))
    data["organizations"][0]["requireapprovalforuseremail"] = False
    async with make_local(data) as local:
        result = await run_sweep(local.clients.dataverse, store, dry_run=True)
    johanna = next(p for p in result.affected if p.email == "johannal@example.com")
    assert [f.id for f in johanna.findings] == ["mailbox-not-tested"]
