"""Facts for the rules: a healthy user, mailbox, record and filter, and `facts(...)` to change any of them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.diagnosis import ExchangeFacts, Facts, FilterFacts, MailboxFacts, RecordFacts, UserFacts

USER = UserFacts(
    systemuserid="a1", aad_object_id="aad-1", name="Alex Wilber", email="alexw@example.com", is_disabled=False
)
HEALTHY = MailboxFacts(
    mailboxid="m1",
    email="alexw@example.com",
    statecode=0,
    approval=1,
    act_delivery=1,
    act_status=1,
    enabled_for_act=True,
    test_scheduled=False,
    test_completed_on=datetime(2026, 10, 2, tzinfo=UTC),
    last_successful_sync=datetime(2026, 11, 25, 9, tzinfo=UTC),
)
RECORD = RecordFacts(
    type="appointment",
    id="r1",
    subject="Quarterly review",
    start=datetime(2026, 11, 27, 15, tzinfo=UTC),
    statecode=3,
    statuscode=5,
    modified_on=datetime(2026, 11, 20, tzinfo=UTC),
    roles=("organizer", "owner"),
)
MATCHING = FilterFacts(name="My Appointments", origin="user", active=True, matches=True)


def facts(**changes: object) -> Facts:
    base = Facts(
        user_ref="alexw@example.com",
        record_type="appointment",
        user=USER,
        mailbox=HEALTHY,
        record_ref="r1",
        record=RECORD,
        filters=(MATCHING,),
        exchange=ExchangeFacts(found=True),
    )
    return replace(base, **changes)  # type: ignore[arg-type]
