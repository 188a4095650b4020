"""Applying one-click fixes (README, "One-click fixes"): re-derive the fix from a fresh diagnosis,
record the application, write as who confirmed it, then queue the checks after the next sync.

    fixer = Fixer(store, investigator, recheck_after=settings.fix_recheck_seconds)
    report, fixes = await fixer.proposals(user, record, "appointment")
    applied = await fixer.apply(user, record, "appointment", "add-filter", by=user)   # Applied
    await fixer.undo(applied.key, by=user)

Nothing of a card is trusted: a Confirm names a fix by id and the changes are those of a diagnosis run
now. Every write carries `CallerObjectId: <by>`, so Dataverse's own privilege checks decide what an agent
or a person may change; the only rules kept here are `may_apply`'s (a person's own filters are changed by
them alone; an agent's fix is an agent's, and Test & Enable the person's too).

A press whose fix is no longer proposed gets the earlier application only while what it wrote still holds
(read back from Dataverse); an application whose writer stopped between write and record ("applying",
older than `STALE_CLAIM`) is settled then from what Dataverse holds: applied (its checks queued) or failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.clients.dataverse import key_of
from bot.diagnosis import RecordType, Report
from bot.diagnosis.fixes import FIX_IDS, Fix
from bot.errors import BackendError, BackendRefused, PermissionDenied
from bot.fixing.applied import (
    FILTER_FIXES,
    SETTING,
    Applied,
    NotAllowed,
    NotApplicable,
    Refused,
    application_key,
    may_apply,
    setting_key,
)
from bot.fixing.followup import check_key, check_ref
from bot.fixing.rows import INACTIVE, by_row, in_effect, write
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
        self,
        user_ref: str,
        record_ref: str | None,
        record_type: RecordType,
        fix_id: str,
        *,
        by: str,
        is_agent: bool = False,
    ) -> Applied:
        """Apply the fix `fix_id` that a diagnosis run now proposes, writing as `by` (the Entra object id
        of who confirmed it). A fix applied (or being applied) already is returned with `first=False`.

        `is_agent`: whether `by` acts as a helpdesk agent (the Teams layer and the CLI decide); False
        leaves them the person's own fixes only (`may_apply`).

        Raises:
            NotApplicable: no such fix applies now (fixed already, or something else blocks sync), or
                Dataverse would not take it (e.g. a filter with its id exists and is not the person's).
            NotAllowed: `may_apply` says no (someone else's own filters; an agent's fix, not an agent).
            Refused: Dataverse refused the write to `by` (403), with its message.
            InvalidIdError: `by` is not an Entra object id.
            BackendError: Dataverse could not be read or written.
        """
        by = require_id(by, "Entra object id of who confirms the fix")
        report, fixes = await self.proposals(user_ref, record_ref, record_type)
        person = _person(report)
        fix = next((f for f in fixes if f.id == fix_id), None)
        if fix is None:
            done = await self.done_before(fix_id, report)
            if done is None:
                raise NotApplicable(_not_applicable(fix_id, report), report=report)
            self._allowed(done.fix, by, report, is_agent)
            return done
        self._allowed(fix, by, report, is_agent)
        if not person:
            raise NotApplicable(_not_applicable(fix_id, report), report=report)
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
            written = await write(self.investigator.dataverse, fix, by, report)
        except PermissionDenied as exc:
            detail = exc.detail or str(exc)
            await self._record(replace(applied, state="refused", error=detail))
            raise Refused(
                f"Dataverse refused the fix ({fix.title}): {detail}", detail=exc.detail, report=report
            ) from exc
        except NotApplicable as exc:
            await self._record(replace(applied, state="failed", error=str(exc)))
            raise
        except BackendRefused as exc:
            if not _refusal(exc):
                await self._record(replace(applied, state="failed", error=str(exc)))
                raise
            detail = exc.detail or str(exc)
            await self._record(replace(applied, state="failed", error=detail))
            raise NotApplicable(f"Dataverse would not apply {fix.title}: {detail}") from exc
        except BackendError as exc:
            await self._record(replace(applied, state="failed", error=str(exc)))
            raise
        result: dict[str, object] = {"written": written}
        if not report.user.aad_object_id:
            result["no_followup"] = f"{_who(report)} has no Entra object id: the bot can't tell them in Teams"
        applied = replace(applied, state="applied", result=result)
        await self._record(applied)
        await self._follow_up(applied)
        log.info("fix %s applied for %s by %s (%s)", fix.id, person, by, applied.key)
        return applied

    async def undo(self, key: str, *, by: str) -> Applied:
        """Reverse a filter fix: deactivate the filter it created or re-activated, as `by`, who must be
        the person. Undoing twice changes nothing the second time (`first=False`); a filter the person
        deleted meanwhile is gone already (`result["gone"]`).

        Raises:
            NotApplicable: no such application, not a filter fix, not applied, or Dataverse would not
                take the change (a 4xx other than 403).
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
        if applied.state == "applying" and self._stale(applied):
            applied = await self._settle(applied)
        if applied.state != "applied":
            raise NotApplicable(f"{applied.fix.title} was not applied ({applied.state}): nothing to undo")
        rows = [w["id"] for w in applied.result.get("written", []) if w.get("table") == "userqueries"]
        gone: list[str] = []
        for row in rows:
            try:
                await self.investigator.dataverse.update_row("userqueries", row, INACTIVE, caller=by)
            except PermissionDenied as exc:
                raise Refused(
                    f"Dataverse refused to undo it: {exc.detail or exc}", detail=exc.detail
                ) from exc
            except BackendRefused as exc:
                if exc.status == 404:  # deleted meanwhile (Personal Options): off already
                    gone.append(row)
                    continue
                if not _refusal(exc):
                    raise
                raise NotApplicable(f"Dataverse would not undo it: {exc.detail or exc}") from exc
        result = {**applied.result, "undone_at": self.now().isoformat(), **({"gone": gone} if gone else {})}
        undone = replace(applied, state="undone", result=result, first=True)
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
            if earlier.state in ("applied", "applying") and not self._stale(earlier):
                return earlier.again()
            # Refused, failed or undone before (a refusal may not hold for this presser); a claim whose
            # writer is gone; or applied a while ago and needed again (a fix takes effect at once, so one
            # proposed again was reverted since): write again, as a new application (a new time: the
            # earlier one's pending checks are skipped). Two such retries at once both write the same
            # idempotent changes.
            log.info("fix %s was %s; applying it again", applied.key, earlier.state)
            # The earlier outcome stays on record beside the new one (a refusal, then an agent's success).
            archived = setting_key(f"{earlier.key}.{earlier.stamp}")
            await self.store.set_setting(archived, earlier.to_dict())
        await self._record(applied)
        return None

    async def _record(self, applied: Applied) -> None:
        await self.store.set_setting(setting_key(applied.key), applied.to_dict())

    async def _follow_up(self, applied: Applied) -> None:
        """Queue the first check after the next sync; each check queues the next (`bot.fixing.followup`).
        Nobody to tell (no Entra id): no checks."""
        if not self.recheck_after or "no_followup" in applied.result:
            return
        first, *later = self.recheck_after
        check = FixFollowup(
            key=check_ref(applied),
            user=applied.user,
            record=applied.record,
            type=applied.record_type,
            remaining=list(later),
        )
        await enqueue(self.store, check_key(applied, first), check, delay=first)

    async def done_before(self, fix_id: str, report: Report) -> Applied | None:
        """When `fix_id` is no longer proposed in `report` because it was applied: that application (a
        second press after the fix took effect, by the person or an agent), while what it wrote still holds.
        One still being written is returned as it is; one whose writer stopped is settled now."""
        person = _person(report)
        if not person:
            return None
        record = report.record.id if report.record else None
        for applied in await self.history(person):
            if applied.fix.id != fix_id or applied.state not in ("applied", "applying"):
                continue
            if applied.fix.id in FILTER_FIXES and applied.record != record:
                continue  # a filter fix is for the record it was proposed for
            if applied.state == "applying":
                if not self._stale(applied):
                    return applied.again()  # being written now
                settled = await self._settle(applied, report)
                if settled.state == "applied":
                    return settled.again()
            elif await in_effect(self.investigator.dataverse, applied, report):
                return applied.again()
        return None

    def _stale(self, applied: Applied) -> bool:
        return self.now() - applied.at >= STALE_CLAIM

    async def _settle(self, applied: Applied, report: Report | None = None) -> Applied:
        """An application left "applying" (its writer stopped between write and record), judged from what
        Dataverse holds now: when the fix is no longer proposed and what it writes holds, it took effect
        (applied now, its checks queued); else it failed (a press writes it again)."""
        if report is None:
            report = await self.investigator.run(applied.user, applied.record, applied.record_type)
        proposed = any(f.id == applied.fix.id for f in fixes_of(report))
        if not proposed and await in_effect(self.investigator.dataverse, applied, report):
            written = [
                {
                    "table": table,
                    "id": row or str(next(c.new for c in changes if c.column == key_of(table))).lower(),
                    "action": "created" if row is None else "updated",
                }
                for (table, row), changes in by_row(applied.fix.changes).items()
            ]
            result = {**applied.result, "written": written, "settled_at": self.now().isoformat()}
            settled = replace(applied, state="applied", result=result)
            await self._record(settled)
            await self._follow_up(settled)
            log.info("fix %s found applied after its writer stopped (%s)", applied.fix.id, applied.key)
            return settled
        failed = replace(applied, state="failed", error="its writer stopped before it took effect")
        await self._record(failed)
        return failed

    def _allowed(self, fix: Fix, by: str, report: Report, is_agent: bool) -> None:
        if may_apply(fix, by=by, person=report.user.aad_object_id, is_agent=is_agent):
            return
        if fix.who == "self":
            raise NotAllowed(
                f"{fix.title}: only {_who(report)} may do this, as it changes their own sync filters"
            )
        raise NotAllowed(f"{fix.title}: only a helpdesk agent may do this")


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


def _who(report: Report) -> str:
    return report.user.name or report.user.email or "the person"


def _person(report: Report) -> str:
    """Whom an application is for: their Entra object id, else their systemuserid (an agent's fix for
    someone who has no Entra id); "" when Dataverse has no such user."""
    return (report.user.aad_object_id or report.user.systemuserid or "").lower()


def _refusal(exc: BackendRefused) -> bool:
    """A 4xx that refuses this very change (a missing row, a bad value, a conflict): not applicable, said
    with Dataverse's words. 401 is the app's own sign-in: a backend problem."""
    return 400 <= exc.status < 500 and exc.status != 401


def _not_applicable(fix_id: str, report: Report) -> str:
    if fix_id not in FIX_IDS:
        return f"there is no fix called {fix_id!r}; fixes: {', '.join(FIX_IDS)}"
    if report.user.aad_object_id is None:
        return f"{fix_id} doesn't apply: the user has no Dynamics 365 user with an Entra object id"
    causes = report.causes
    if not causes:
        return f"{fix_id} doesn't apply now: nothing blocks sync (fixed already?)"
    return f"{fix_id} doesn't apply now; what blocks sync: {', '.join(causes)}"
