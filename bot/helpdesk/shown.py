"""The last diagnosis the bot showed in each chat, kept as a setting per conversation and person, so that
"talk to a human" a message later (perhaps on another instance of the bot) hands the helpdesk what the
person was shown, exactly as the diagnosis card's Escalate button would.

    await set_last_diagnosis(store, chat, Shown(user, "appointment", report), at=now)
    shown = await get_last_diagnosis(store, chat, at=now)     # Shown | None: none, or too old

One setting per chat and person, overwritten by each new diagnosis: never more than the latest is kept.
Settings have no expiry of their own (neither SQLite nor Table Storage has one), so each carries when it
was shown and is not carried after `LIFETIME`; an expired one is deleted when it is next read.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.diagnosis import RECORD_TYPES, RecordType, Report
from bot.errors import StoreError
from bot.store.base import Store

__all__ = ["LIFETIME", "Chat", "Shown", "forget_last_diagnosis", "get_last_diagnosis", "set_last_diagnosis"]

log = logging.getLogger(__name__)

# A working day. "It didn't help" comes after the person tried the card's steps and waited for the next
# sync (server-side sync can take a while to retry), so an hour is too short; but a diagnosis from
# yesterday may no longer be true (someone fixed the filter, the mailbox was re-approved), and the
# helpdesk must not be handed it as today's. Past this, the person is asked nothing: the ticket says no
# record was named, and the agents' "Re-run diagnosis" is one press away.
LIFETIME = timedelta(hours=8)


@dataclass(frozen=True)
class Chat:
    """Where a diagnosis was shown: the tenant, the conversation (a 1:1 chat, a group chat or a channel
    thread) and the person who asked in it."""

    tenant: str
    conversation: str
    person: str

    def key(self) -> str:
        """The setting's key. The conversation id is hashed: Teams' ids are long and hold ':' and ';', and a
        Table Storage row key allows 1 KB. Tenant and person stay readable (whose data it is)."""
        digest = hashlib.sha256(self.conversation.encode()).hexdigest()[:32]
        return f"last_diagnosis:{self.tenant.lower()}:{self.person.lower()}:{digest}"


@dataclass(frozen=True)
class Shown:
    """A diagnosis shown in a chat: about `user` (the asker, or whom an agent asked about), of records of
    `record_type`; `report.record` is None for a mailbox-level diagnosis."""

    user: str
    record_type: RecordType
    report: Report

    def to_setting(self, at: datetime) -> dict[str, Any]:
        return {
            "user": self.user,
            "record_type": self.record_type,
            "report": self.report.to_dict(),
            "shown_at": at.isoformat(),
        }

    @classmethod
    def from_setting(cls, value: dict[str, Any]) -> tuple[Shown, datetime]:
        """(the diagnosis, when it was shown).

        Raises:
            ValueError: `value` is not what `to_setting` wrote (a bad report, type or time included).
        """
        record_type = next((t for t in RECORD_TYPES if t == value.get("record_type")), None)
        user, report = value.get("user"), value.get("report")
        if record_type is None or not isinstance(user, str) or not isinstance(report, dict):
            raise ValueError("not a shown diagnosis")
        shown_at = datetime.fromisoformat(str(value.get("shown_at")))
        if shown_at.tzinfo is None:
            raise ValueError("'shown_at' has no time zone")
        return cls(user, record_type, Report.from_dict(report)), shown_at


async def set_last_diagnosis(store: Store, chat: Chat, shown: Shown, *, at: datetime) -> None:
    """`shown` is now the chat's last diagnosis (the one before it is replaced)."""
    await store.set_setting(chat.key(), shown.to_setting(at))


async def forget_last_diagnosis(store: Store, chat: Chat) -> None:
    """What the chat shows now is no diagnosis (a picker, a checklist): none is carried any more."""
    await store.delete_setting(chat.key())


async def get_last_diagnosis(store: Store, chat: Chat, *, at: datetime) -> Shown | None:
    """The chat's last diagnosis, unless none was kept or it is older than `LIFETIME` at `at`."""
    key = chat.key()
    value = await store.get_setting(key)
    if value is None:
        return None
    try:
        shown, shown_at = Shown.from_setting(value)
    except ValueError as exc:
        log.warning("a kept diagnosis could not be read, so it is not carried: %s", exc)
        return None
    if at - shown_at < LIFETIME:
        return shown
    try:
        await store.delete_setting(key)  # too old: never carried, and not kept any longer
    except StoreError as exc:  # the escalation goes on without it; the next read tries again
        log.warning("an expired diagnosis could not be deleted: %s", exc)
    return None
