"""Applying one-click fixes (docs/fixes-spec.md, "Applying"): re-derive the fix from a fresh diagnosis,
record the application, write as who confirmed it, then queue the checks after the next sync.

    fixer = Fixer(store, investigator, recheck_after=settings.fix_recheck_seconds)
    report, fixes = await fixer.proposals(user, record, "appointment")
    applied = await fixer.apply(user, record, "appointment", "add-filter", by=user)   # Applied
    await fixer.undo(applied.key, by=user)

Nothing of a card is trusted: a Confirm names a fix by id and the changes are those of a diagnosis run
now. Every write carries `CallerObjectId: <by>`, so Dataverse's own privilege checks decide what an agent
or a person may change; the only rule kept here is that a person's own filters are changed by them alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.clients.dataverse import key_of
from bot.diagnosis import RecordType, Report
from bot.diagnosis.fixes import FIX_IDS, Change, Fix
from bot.errors import AlreadyExists, BackendError, PermissionDenied
from bot.fixing.applied import (
    FILTER_FIXES,
    SETTING,
    Applied,
    NotAllowed,
    NotApplicable,
    Refused,
    application_key,
    setting_key,
)
from bot.fixing.followup import check_key
from bot.ids import require_id
from bot.investigation import Investigator
from bot.notify.outbox.kinds import FixFollowup, enqueue
from bot.store.base import Store

__all__ = ["STALE_CLAIM", "Fixer", "fixes_of", "history"]

log = logging.getLogger(__name__)

# Within this long of a press, another press of the same fix is the same one (a double click, two agents at
# once): it gets the first one's application. Later, an application still "applying" lost its writer (a
# crash mid-write), and a fix applied but proposed again was reverted since: a press writes again. The
# writes are safe to repeat (deterministic ids, PATCH), so the only cost is a repeat.
STALE_CLAIM = timedelta(minutes=3)
INACTIVE = {"statecode": 1, "statuscode": 2}  # a deactivated filter (userquery)


def fixes_of(report: Report) -> tuple[Fix, ...]:
    """The fixes a report's fail findings carry, in fix order."""
    return tuple(fix for finding in report.with_status("fail") for fix in finding.fixes)


class Fixer:
    """Applies and undoes fixes for one org, keeping each application in `store`.

    Args:
        recheck_after: seconds after a fix when it is checked again (`FIX_RECHECK_AFTER`); empty: never.
        now: the clock (tests move it).
    """

    def __init__(
        self,
        store: Store,
        investigator: Investigator,
        *,
        recheck_after: Sequence[float] = (900.0, 2400.0),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.investigator = investigator
        self.recheck_after = tuple(recheck_after)
        self.now = now

    async def proposals(
        self, user_ref: str, record_ref: str | None, record_type: RecordType = "appointment"
    ) -> tuple[Report, tuple[Fix, ...]]:
        """A fresh diagnosis and the fixes it proposes.

        Raises:
            InputError: the user or record reference can't be used.
            BackendError: Dataverse could not be read.
        """
        report = await self.investigator.run(user_ref, record_ref, record_type)
        return report, fixes_of(report)

    async def apply(
        self, user_ref: str, record_ref: str | None, record_type: RecordType, fix_id: str, *, by: str
    ) -> Applied:
        """Apply the fix `fix_id` that a diagnosis run now proposes, writing as `by` (the Entra object id
        of who confirmed it). A fix applied (or being applied) already is returned with `first=False`.

        Raises:
            NotApplicable: no such fix applies now (fixed already, or something else blocks sync).
            NotAllowed: a fix of the person's own filters, confirmed by someone else.
            Refused: Dataverse refused the write to `by` (403), with its message.
            InvalidIdError: `by` is not an Entra object id.
            BackendError: Dataverse could not be read or written.
        """
        by = require_id(by, "Entra object id of who confirms the fix")
        report, fixes = await self.proposals(user_ref, record_ref, record_type)
        person = (report.user.aad_object_id or "").lower()
        fix = next((f for f in fixes if f.id == fix_id), None)
        if fix is not None and fix.who == "self" and by != person:
            raise NotAllowed(
                f"{fix.title}: only {_who(report)} may do this, as it changes their own sync filters"
            )
        if fix is None or not person:
            done = await self._done_before(fix_id, person, report)
            if done is not None and done.fix.who == "self" and by != person:
                raise NotAllowed(f"{done.fix.title}: only {_who(report)} may do this")
            if done is not None:
                return done
            raise NotApplicable(_not_applicable(fix_id, report))
        record = report.record.id if report.record else None
        applied = Applied(
            application_key(fix, person),
            fix,
            person,
            by,
            "applying",
            self.now(),
            record=record,
            record_type=record_type,
        )
        earlier = await self._claim(applied)
        if earlier is not None:
            return earlier
        try:
            written = await self._write(fix, by)
        except PermissionDenied as exc:
            detail = exc.detail or str(exc)
            await self._record(replace(applied, state="refused", error=detail))
            raise Refused(f"Dataverse refused the fix ({fix.title}): {detail}", detail=exc.detail) from exc
        except BackendError as exc:
            await self._record(replace(applied, state="failed", error=str(exc)))
            raise
        applied = replace(applied, state="applied", result={"written": written})
        await self._record(applied)
        await self._follow_up(applied)
        log.info("fix %s applied for %s by %s (%s)", fix.id, person, by, applied.key)
        return applied

    async def undo(self, key: str, *, by: str) -> Applied:
        """Reverse a filter fix: deactivate the filter it created or re-activated, as `by`, who must be
        the person. Undoing twice changes nothing the second time (`first=False`).

        Raises:
            NotApplicable: no such application, not a filter fix, or not applied.
            NotAllowed: `by` is not the person whose filter it is.
            Refused: Dataverse refused the write (403).
            BackendError: Dataverse could not be written.
        """
        by = require_id(by, "Entra object id of who undoes the fix")
        applied = await self.get(key)
        if applied is None:
            raise NotApplicable(f"no fix was applied under the key {key[:40]!r}")
        if applied.fix.id not in FILTER_FIXES:
            raise NotApplicable(f"{applied.fix.title} can't be undone here: only sync filter fixes can")
        if by != applied.user.lower():
            raise NotAllowed("only the person whose sync filter it is may undo this fix")
        if applied.state == "undone":
            return applied.again()
        if applied.state != "applied":
            raise NotApplicable(f"{applied.fix.title} was not applied ({applied.state}): nothing to undo")
        rows = [w["id"] for w in applied.result.get("written", []) if w.get("table") == "userqueries"]
        try:
            for row in rows:
                await self.investigator.dataverse.update_row("userqueries", row, INACTIVE, caller=by)
        except PermissionDenied as exc:
            raise Refused(f"Dataverse refused to undo it: {exc.detail or exc}", detail=exc.detail) from exc
        undone = replace(
            applied,
            state="undone",
            result={**applied.result, "undone_at": self.now().isoformat()},
            first=True,
        )
        await self._record(undone)
        return undone

    async def get(self, key: str) -> Applied | None:
        """The application kept under `key`, or None."""
        data = await self.store.get_setting(setting_key(key))
        return None if data is None else Applied.from_dict(data)

    async def history(self, user: str | None = None) -> list[Applied]:
        """Every application kept (or `user`'s, an Entra object id), newest first."""
        return await history(self.store, user)

    # --- the steps ------------------------------------------------------------------------------------

    async def _claim(self, applied: Applied) -> Applied | None:
        """Record `applied` ("applying") before anything is written; None when this call may write, else
        the application that was there already (applied, or being applied)."""
        if await self.store.add_setting(setting_key(applied.key), applied.to_dict()):
            return None
        earlier = await self.get(applied.key)
        if earlier is not None:
            if earlier.state in ("applied", "applying") and self.now() - earlier.at < STALE_CLAIM:
                return earlier.again()
            # Refused, failed or undone before (a refusal may not hold for this presser); a claim whose
            # writer is gone; or applied a while ago and needed again (a fix takes effect at once, so one
            # proposed again was reverted since): write again. Two such retries at once both write the
            # same idempotent changes.
            log.info("fix %s was %s; applying it again", applied.key, earlier.state)
        await self._record(applied)
        return None

    async def _record(self, applied: Applied) -> None:
        await self.store.set_setting(setting_key(applied.key), applied.to_dict())

    async def _write(self, fix: Fix, by: str) -> list[dict[str, str]]:
        """Write the fix's changes as `by`: one create per new row, one update per existing row."""
        dataverse = self.investigator.dataverse
        written: list[dict[str, str]] = []
        for (table, row), changes in _by_row(fix.changes).items():
            columns = {c.column: c.new for c in changes}
            if row is None:
                try:
                    made = await dataverse.create_row(table, columns, caller=by)
                    action = "created"
                except AlreadyExists:
                    made, action = str(columns.get(key_of(table) or "", "")).lower(), "existed"
                written.append({"table": table, "id": made, "action": action})
            else:
                await dataverse.update_row(table, row, columns, caller=by)
                written.append({"table": table, "id": row, "action": "updated"})
        return written

    async def _follow_up(self, applied: Applied) -> None:
        """Queue the first check after the next sync; each check queues the next (`bot.fixing.followup`)."""
        if not self.recheck_after:
            return
        first, *later = self.recheck_after
        check = FixFollowup(
            key=applied.key,
            user=applied.user,
            record=applied.record,
            type=applied.record_type,
            remaining=list(later),
        )
        await enqueue(self.store, check_key(applied, first), check, delay=first)

    async def _done_before(self, fix_id: str, person: str, report: Report) -> Applied | None:
        """When `fix_id` is no longer proposed because it was applied: that application (a second press
        after the fix took effect)."""
        if not person:
            return None
        record = report.record.id if report.record else None
        for applied in await self.history(person):
            same_target = applied.record == record or applied.fix.who == "agent"
            if applied.fix.id == fix_id and applied.state in ("applied", "applying") and same_target:
                return applied.again()
        return None


async def history(store: Store, user: str | None = None) -> list[Applied]:
    """Every application kept in `store` (or `user`'s, an Entra object id), newest first."""
    found: list[Applied] = []
    for key, data in await store.list_settings(SETTING):
        try:
            applied = Applied.from_dict(data)
        except ValueError:
            log.warning("setting %s is not a fix application; skipped", key)
            continue
        if user is None or applied.user == user.lower():
            found.append(applied)
    return sorted(found, key=lambda a: a.at, reverse=True)


def _by_row(changes: Sequence[Change]) -> dict[tuple[str, str | None], list[Change]]:
    rows: dict[tuple[str, str | None], list[Change]] = {}
    for change in changes:
        rows.setdefault((change.table, change.row), []).append(change)
    return rows


def _who(report: Report) -> str:
    return report.user.name or report.user.email or "the person"


def _not_applicable(fix_id: str, report: Report) -> str:
    if fix_id not in FIX_IDS:
        return f"there is no fix called {fix_id!r}; fixes: {', '.join(FIX_IDS)}"
    if report.user.aad_object_id is None:
        return f"{fix_id} doesn't apply: the user has no Dynamics 365 user with an Entra object id"
    causes = report.causes
    if not causes:
        return f"{fix_id} doesn't apply now: nothing blocks sync (fixed already?)"
    return f"{fix_id} doesn't apply now; what blocks sync: {', '.join(causes)}"
