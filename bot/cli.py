"""`python -m bot`: the command line (design.md section 3). Thin: it calls what the bot calls.

Commands and flags are in `bot/cli_parser.py`; what they run on (clients, store, sandbox) comes from
`bot/setup.py`, as `serve`'s does. Errors end in one place, `main`'s boundary: one stderr line each and the
documented exit code (0 done, 2 usage or input error, 3 a backend was unreachable or refused).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import SecretStr

from bot.cli_parser import EXIT_BACKEND, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, LOOPBACK, build_parser
from bot.config import Settings, load_settings
from bot.diagnosis import Report
from bot.errors import (
    AmbiguousRecordError,
    BackendError,
    ConfigError,
    InputError,
    StoreError,
    SyncDoctorError,
)
from bot.ids import is_id
from bot.observability import configure as configure_observability
from bot.setup import missing_settings, preflight, store_from_settings, wiring

if TYPE_CHECKING:
    from bot.clients.dataverse import DataverseClient
    from bot.diagnosis.fixes import Fix
    from bot.fixing import Applied, Fixer

__all__ = ["main"]


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        print(f"… {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the error boundary: every error of `bot.errors` ends here as one stderr line
    and the documented exit code.

    Returns:
        0 done, 2 usage, input, fixture or configuration error, 3 a backend or the store was unreachable
        or refused, 130 interrupted. (argparse's own refusals exit 2 through SystemExit.)
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        return _COMMANDS[args.command](args)
    except SyncDoctorError as exc:
        return _failed(exc, args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return EXIT_OK


def _failed(exc: SyncDoctorError, args: argparse.Namespace) -> int:
    """Say what went wrong on stderr (no traceback) and give the exit code for its branch of the tree."""
    if isinstance(exc, AmbiguousRecordError):
        kind = getattr(args, "record_type", "record")
        print(
            f"error: {len(exc.candidates)} {kind}s match {exc.words!r}; name one with --record ID:",
            file=sys.stderr,
        )
        for c in exc.candidates:
            print(f"  {c.id}  {c.start or '':20}  {c.subject}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, BackendError | StoreError):
        print(f"error: could not {args.command}: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    print(f"error: {exc}", file=sys.stderr)  # InputError, FixtureError, ConfigError
    return EXIT_USAGE


async def _diagnose(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.fixture:
        _progress(f"starting the sandbox with {args.fixture}")
    async with wiring(settings, fixture=args.fixture) as wired:
        _progress(f"diagnosing {args.user}" + (f" / {args.record}" if args.record else " (mailbox check)"))
        report = await wired.investigator().run(args.user, args.record, args.record_type)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report, sys.stdout)
    return EXIT_OK


_MARK = {"fail": "FAIL", "warn": "WARN", "pass": "ok", "unknown": "??"}


def print_report(report: Report, out: TextIO) -> None:
    """The report as a table a person reads in a terminal."""
    user = report.user
    who = f"{user.name} <{user.email}>" if user.name else (user.email or user.aad_object_id or "?")
    print(f"User:        {who}", file=out)
    if report.record is not None:
        rec = report.record
        print(
            f"{rec.type.capitalize() + ':':13}{rec.subject or '(no subject)'}  {rec.start or ''}  [{rec.id}]",
            file=out,
        )
        in_exchange = {True: "yes", False: "no", None: "could not check"}[report.in_exchange]
        print(f"In Exchange: {in_exchange}", file=out)
    verdict = report.verdict()
    ids = ", ".join(verdict.ids)
    line = {
        "blocked": f"{len(verdict.ids)} cause(s) found: {ids}",
        "warned": f"no blocking cause; worth a look: {ids}",
    }.get(verdict.kind, "no problem found")
    print(f"Verdict:     {line}", file=out)
    print(file=out)
    _print_checks(report, out)
    _print_steps(report, out)


def _print_checks(report: Report, out: TextIO) -> None:
    """One line per check, with the evidence of those that did not pass."""
    width = max((len(f.id) for f in report.findings), default=10)
    for finding in report.findings:
        print(f"  {_MARK[finding.status]:4}  {finding.id:{width}}  {finding.title}", file=out)
        if finding.status != "pass" and finding.evidence:
            facts = "; ".join(f"{k}: {_plain(v)}" for k, v in finding.evidence.items())
            print(f"  {'':4}  {'':{width}}  {facts}", file=out)


def _print_steps(report: Report, out: TextIO) -> None:
    """The steps of each failure and warning, in fix order, with their sources."""
    to_fix = report.with_status("fail", "warn")
    if to_fix:
        print("\nWhat to do, in this order:", file=out)
    for number, finding in enumerate(to_fix, start=1):
        print(f"{number}. {finding.title}", file=out)
        for step_no, step in enumerate(finding.steps, start=1):
            print(f"   {step_no}) {step}", file=out)
        print(f"   Source: {finding.source}", file=out)


def _plain(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    return "none" if value is None else str(value)


async def _fix(args: argparse.Namespace) -> int:
    """`fix`: list the proposed fixes, or apply (`--apply`) or undo (`--undo`) one."""
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="sync-doctor-fix-") as scratch:
        if args.fixture:
            # The sandbox's org lives as long as this command: so does the record of what was applied to
            # it (in STORE_URL, a later run on a fresh sandbox would be told "applied already").
            _progress(f"starting the sandbox with {args.fixture}")
            scratch_store = SecretStr(f"sqlite:///{Path(scratch) / 'fixes.sqlite3'}")
            settings = settings.model_copy(update={"store_url": scratch_store})
        return await _fix_with(settings, args)


async def _fix_with(settings: Settings, args: argparse.Namespace) -> int:
    from bot.fixing import Fixer, FixError, fixes_of

    async with wiring(settings, fixture=args.fixture) as wired:
        investigator = wired.investigator()
        if not (args.apply or args.undo):
            _progress(
                f"diagnosing {args.user}" + (f" / {args.record}" if args.record else " (mailbox check)")
            )
            report = await investigator.run(args.user, args.record, args.record_type)
            _print_fixes(fixes_of(report), args.json)
            return EXIT_OK
        # A sandbox ends with this command: nobody would be there to check back on its fixes.
        recheck = () if args.fixture else settings.fix_recheck_seconds
        fixer = Fixer(wired.store(), investigator, recheck_after=recheck)
        action = f"apply {args.apply}" if args.apply else f"undo {args.undo}"
        try:
            if args.apply:
                out = await _apply(fixer, args)
            else:
                out = await _undo(fixer, args)
        except FixError as exc:
            print(f"error: could not {action}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        [(verb, done)] = out.items()
        again = "" if done["first"] else " (already, earlier: nothing written now)"
        print(f"{verb.capitalize()}{again}: {done['id']} for {args.user} [{done['key']}]")
        for row in done["result"].get("written", []):
            print(f"  {row['action']} {row['table']}({row['id']})")
        for row in done["result"].get("gone", []):
            print(f"  gone already: userqueries({row})")
        if done["result"].get("no_followup"):
            print(f"  no follow-up: {done['result']['no_followup']}")
    return EXIT_OK


async def _apply(fixer: Fixer, args: argparse.Namespace) -> dict[str, Any]:
    """Apply as the user (their own fixes; Test & Enable too, where Dataverse lets them), or as the agent
    `--as` names (an agent's fixes, and any fix they may apply)."""
    from bot.fixing.applied import FILTER_FIXES, PERSON_TOO

    if args.apply not in FILTER_FIXES | PERSON_TOO and not args.as_agent:
        raise InputError(
            f"{args.apply} is an agent's fix (a mailbox's settings): say who applies it with --as AGENT "
            "(their Entra object id or email)"
        )
    dataverse = fixer.investigator.dataverse
    by = await _entra_id(dataverse, args.as_agent or args.user, "--as" if args.as_agent else "--user")
    _progress(f"applying {args.apply} for {args.user} as {by}")
    applied = await fixer.apply(
        args.user, args.record, args.record_type, args.apply, by=by, is_agent=bool(args.as_agent)
    )
    return {"applied": _application(applied)}


async def _undo(fixer: Fixer, args: argparse.Namespace) -> dict[str, Any]:
    from bot.diagnosis.fixes import FIX_IDS
    from bot.fixing import NotApplicable

    dataverse = fixer.investigator.dataverse
    person = await _entra_id(dataverse, args.user, "--user")
    by = await _entra_id(dataverse, args.as_agent, "--as") if args.as_agent else person
    key = args.undo
    if args.undo in FIX_IDS:  # the user's latest application of that fix (for that record, when named)
        record = args.record.lower() if args.record and is_id(args.record) else None
        latest = next(
            (
                a
                for a in await fixer.history(person)
                if a.fix.id == args.undo and a.state in ("applied", "undone") and record in (None, a.record)
            ),
            None,
        )
        if latest is None:
            raise NotApplicable(f"no {args.undo} was applied for {args.user}")
        key = latest.key
    _progress(f"undoing {key} as {by}")
    return {"undone": _application(await fixer.undo(key, by=by))}


def _application(applied: Applied) -> dict[str, Any]:
    """An application as `fix --json` prints it: `id`, `changes`, `result` (the contract), and the rest."""
    return {
        "id": applied.fix.id,
        "changes": [c.to_dict() for c in applied.fix.changes],
        "result": applied.result,
        "key": applied.key,
        "state": applied.state,
        "first": applied.first,
        "user": applied.user,
        "by": applied.by,
    }


async def _entra_id(dataverse: DataverseClient, ref: str, flag: str) -> str:
    """`ref` as an Entra object id: as given when it is one, else the Dataverse user's with that email.

    Raises:
        InputError: no Dataverse user has that email, or theirs has no Entra object id.
    """
    if is_id(ref.strip()):
        return ref.strip().lower()
    found = await dataverse.find_user(ref)
    aad = found[0].aad_object_id if found else None
    if not aad:
        raise InputError(f"{flag} {ref}: no Dynamics 365 user with an Entra object id has that email")
    return str(aad).lower()


def _print_fixes(fixes: Sequence[Fix], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"fixes": [f.to_dict() for f in fixes]}, indent=2))
        return
    if not fixes:
        print("No fix to apply: nothing that blocks sync has a one-click fix.")
    for fix in fixes:
        who = "the user, as themselves" if fix.who == "self" else "an agent (--as AGENT)"
        print(f"{fix.id}: {fix.title}  [for the finding {fix.finding}; applied by {who}]")
        for change in fix.changes:
            target = f"{change.table}({change.row})" if change.row else f"new {change.table} row"
            old = "" if change.row is None else f"{_plain(change.old)} -> "
            print(f"    {target}.{change.column}: {old}{_plain(change.new)}")


async def _fixes(args: argparse.Namespace) -> int:
    """`fixes`: every application kept in the store, newest first."""
    from bot.fixing import history as applications

    store = store_from_settings(load_settings())
    try:
        history = await applications(store, args.user)
    finally:
        await store.close()
    if args.json:
        print(json.dumps({"applications": [a.to_dict() for a in history]}, indent=2))
        return EXIT_OK
    for a in history:
        rows = ", ".join(f"{w['action']} {w['table']}({w['id']})" for w in a.result.get("written", []))
        print(
            f"{a.at:%Y-%m-%d %H:%M}Z  {a.state:8}  {a.fix.id:24}  for {a.user}  by {a.by}  "
            f"{rows or a.error or ''}  [{a.key}]"
        )
    print(f"{len(history)} fix(es)", file=sys.stderr)
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    settings = load_settings()
    traces = configure_observability(settings, level=logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("bot").info("traces: %s", traces)
    preflight(settings, fixture=args.sandbox)  # a broken fixture or a missing setting: before binding a port
    if not settings.microsoft_app_id:
        if args.host not in LOOPBACK:
            raise ConfigError("without MicrosoftAppId requests can't be authenticated; bind to loopback only")
        logging.getLogger("bot").warning(
            "MicrosoftAppId is not set: accepting unauthenticated requests on loopback"
        )
    app = create_app(settings, sandbox=args.sandbox, deliver=args.deliver)
    print(f"Sync Doctor listening on http://{args.host}:{args.port}/api/messages", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)  # StoreError: at start-up
    return EXIT_OK


async def _sweep(args: argparse.Namespace) -> int:
    from bot.fixing import register_followups
    from bot.helpdesk.senders import register_senders
    from bot.notify.outbox import deliverer_for
    from bot.notify.progress import Progress
    from bot.notify.sweep import run_sweep

    settings = load_settings()
    progress = Progress(sys.stderr, "sweep")  # stderr: stdout is --json's
    try:
        async with wiring(settings, fixture=args.fixture) as wired:
            store = wired.store()
            sweeping = asyncio.create_task(
                run_sweep(
                    wired.clients.dataverse,
                    store,
                    dry_run=args.dry_run,
                    retention_days=settings.outbox_retention_days,
                    progress=progress,
                )
            )
            if args.dry_run:
                result = await sweeping
            else:
                deliverer = deliverer_for(settings, store)
                register_senders(deliverer)
                register_followups(deliverer, wired.investigator())
                # Notices go out while later pages are still read: the first within a second or two.
                try:
                    delivered = await _deliver_while(deliverer, sweeping, progress)
                    result = await sweeping
                    delivered += await _deliver(
                        deliverer, store, args.deliver_for, progress=progress, report_key=result.report_key
                    )
                finally:
                    sweeping.cancel()  # a no-op once done; delivery broke (the store): stop the sweep too
                    await deliverer.resign()  # `serve` or a worker takes the delivery lead over at once
        progress.finish()
    except RuntimeError as exc:  # another sweep holds the lease
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        out = result.dry_run_json()
    else:
        out = {
            **result.dry_run_json(),
            "queued": result.queued,
            "already_told": result.already_told,
            "muted": result.muted,
            "fixed": result.fixed,
            "delivered": delivered,
            "pages": result.pages,
            "expired": result.expired,
        }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{len(result.affected)} affected ({result.reachable} reachable, {result.unreachable} not yet), "
            f"{result.dataverse_requests} Dataverse requests for {result.pages} page(s)"
        )
        for person in result.affected:
            print(f"  {person.email or person.aad_object_id}: {', '.join(person.causes)}")
        if not args.dry_run:
            print(
                f"queued {result.queued}, already told {result.already_told}, muted {result.muted}, delivered {delivered}"
            )
    return EXIT_OK


ROUNDS = 2  # delivery rounds a sweep runs at once (see `_beside`)


async def _deliver_while(deliverer: Any, sweeping: asyncio.Task[Any], progress: Any) -> int:
    """Deliver what the sweep has queued so far, in two overlapping rounds, until it has finished queueing."""

    async def round_after_round() -> int:
        sent = 0
        while not sweeping.done():
            round_sent = await deliverer.drain(limit=20)
            sent += round_sent
            if round_sent:
                progress.add(sent=round_sent)
            else:  # nothing queued yet: look again soon, or as soon as the sweep ends
                await asyncio.wait({sweeping}, timeout=0.2)
        return sent

    return sum(await asyncio.gather(*(round_after_round() for _ in range(ROUNDS))))


async def _beside(deliverer: Any, progress: Any, done: asyncio.Event) -> int:
    """More delivery rounds beside the one `_deliver` runs, until it is done: one claims and records while
    another sends, so the store's round trips (on Azure a receive, a read and a write per entry) don't
    leave the connector idle. Entries for one person still go in order (the deliverer's lanes)."""
    sent = 0
    while not done.is_set():
        round_sent = await deliverer.drain(limit=20)
        sent += round_sent
        if round_sent and progress is not None:
            progress.add(sent=round_sent)
        elif not round_sent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=0.2)
    return sent


async def _deliver(
    deliverer: Any, store: Any, limit_seconds: float, *, progress: Any = None, report_key: str | None = None
) -> int:
    """Deliver until nothing is pending, or only what waits longer than a lease (a helpdesk channel to
    be set up, a long Retry-After), or the time limit: that waits for the next run or `serve`.
    Entries an interrupted run had claimed come due when their lease ends, so they are delivered here.
    This sweep's delivery report (`report_key`) is waited for too while it waits for its notices."""
    import time

    sent, ends = 0, time.monotonic() + limit_seconds
    done = asyncio.Event()
    beside = [asyncio.create_task(_beside(deliverer, progress, done)) for _ in range(ROUNDS - 1)]
    try:
        sent = await _deliver_rounds(deliverer, store, ends, progress=progress, report_key=report_key)
    finally:
        done.set()
        sent += sum(await asyncio.gather(*beside))
    return sent


async def _deliver_rounds(
    deliverer: Any, store: Any, ends: float, *, progress: Any, report_key: str | None
) -> int:
    import time

    from bot.notify.report import report_waits

    sent = 0
    while time.monotonic() < ends:
        round_sent = await deliverer.drain(limit=20)
        sent += round_sent
        if progress is not None and round_sent:
            progress.add(sent=round_sent)
        if round_sent:
            continue  # more may be due: only an idle round asks the store what waits (on Azure a scan)
        waiting, due_in = await store.pending()
        stop = waiting == 0 or (due_in is not None and due_in > deliverer.lease_seconds + 1)
        if stop and waiting and report_key and await report_waits(store, report_key, now=time.time()):
            stop, due_in = False, 1.0  # its notices are done or retry later: it goes next
        if stop:
            if waiting:
                print(
                    f"{waiting} message(s) wait to be retried later (next in {due_in:.0f} s)", file=sys.stderr
                )
            break
        if due_in:  # nothing due now: wait for the next one (a retry, an abandoned lease)
            await asyncio.sleep(min(max(due_in, 0.05), 1.0, max(0.0, ends - time.monotonic())))
    return sent


async def _report(args: argparse.Namespace) -> int:
    from bot.notify.export import write_rows
    from bot.notify.report import notice_rows

    store = store_from_settings(load_settings())
    try:
        count = await write_rows(notice_rows(store, since=args.since), sys.stdout, args.form)
    finally:
        await store.close()
    if args.form != "table":
        print(f"{count} notice(s)", file=sys.stderr)
    return EXIT_OK


async def _deliver_forever(args: argparse.Namespace) -> int:
    from bot.fixing import register_followups
    from bot.helpdesk.senders import register_senders
    from bot.notify.outbox import deliverer_for

    settings = load_settings()
    configure_observability(settings, level=logging.DEBUG if args.verbose else logging.INFO)
    # The outbox holds the checks after one-click fixes, which diagnose again: a worker that could lead
    # delivery without Dataverse would hold them back for good (nobody else sends while it leads).
    missing = missing_settings(settings)
    if missing and not args.sandbox:
        raise ConfigError(
            f"deliver needs Dataverse, as serve does (not set: {', '.join(missing)}): the outbox holds the "
            "checks after one-click fixes, which diagnose again. Set them, or use the sample org (--sandbox)."
        )
    if args.sandbox:
        preflight(settings, fixture=args.sandbox)
    store = store_from_settings(settings)
    deliverer = deliverer_for(settings, store)
    register_senders(deliverer)
    try:
        async with wiring(settings, store=store, fixture=args.sandbox) as wired:
            register_followups(deliverer, wired.investigator())
            return await _deliver_until_stopped(args, deliverer)
    finally:
        await store.close()


async def _deliver_until_stopped(args: argparse.Namespace, deliverer: Any) -> int:
    import signal

    from bot.notify.outbox import drain_forever

    total = 0

    def report(sent: int) -> None:
        nonlocal total
        if sent:
            total += sent
            print(f"delivered {sent} (total {total})", file=sys.stderr, flush=True)

    worker = asyncio.ensure_future(
        drain_forever(deliverer, every=args.every, batch=32, rounds=2, on_round=report)
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.cancel)
    print("delivery worker started; Ctrl+C stops it", file=sys.stderr, flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await worker
    print(f"delivery worker stopped after {total} message(s)", file=sys.stderr, flush=True)
    return EXIT_OK


def _manifest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.manifest import AppValues, build_package

    settings = None if args.bot_id and args.graph_app_id else load_settings()
    values = AppValues(
        bot_id=args.bot_id or (settings.microsoft_app_id if settings else ""),
        graph_app_id=args.graph_app_id or (settings.azure_client_id if settings else None) or "",
        developer_name=args.developer_name,
        website_url=args.website_url,
        privacy_url=args.privacy_url,
        terms_url=args.terms_url,
    )
    out = build_package(Path(args.out), values, args.app_version)
    print(f"Valid Teams app package written to {out}")
    return EXIT_OK


def _intent(args: argparse.Namespace) -> int:
    from bot.teams.intents import classify

    lines = args.text or (line.rstrip("\n") for line in sys.stdin)
    for text in lines:
        print(json.dumps(classify(text).to_dict(text)), flush=True)
    return EXIT_OK


async def _sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox import SAMPLE_ORG, Fault, SandboxConfig, load_fixture, start_sandbox

    org = load_fixture(args.fixture or SAMPLE_ORG)
    try:
        faults = [Fault.parse(json.loads(spec)) for spec in args.fault]
    except (ValueError, TypeError) as exc:
        raise InputError(f"--fault: {exc}") from exc
    if args.latency_ms:
        faults.insert(0, Fault(route="*", latency=args.latency_ms / 1000))
    if args.host not in LOOPBACK:
        print(
            "warning: the sandbox serves test data without real authentication; bind it to loopback",
            file=sys.stderr,
        )
    token = "sandbox-token"  # noqa: S105 - a loopback simulator's fixed token, not a secret
    running = await start_sandbox(
        org, SandboxConfig(faults=faults, static_tokens={token}), host=args.host, port=args.port
    )
    print(f"Sandbox serving {org.source} at {running.url}", flush=True)
    print(
        f"  DATAVERSE_URL={running.url}  GRAPH_URL={running.url}  AZURE_AUTHORITY_HOST={running.url}",
        flush=True,
    )
    print(
        f"  Bearer token accepted without Entra: {token} (or get one from {running.url}/<tenant>/oauth2/v2.0/token)"
    )
    print("Press Ctrl+C to stop.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await running.close()
    return EXIT_OK


def _in_a_loop(
    command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    """An async command as one the table runs: in its own event loop."""
    return lambda args: asyncio.run(command(args))


async def _check_config(args: argparse.Namespace) -> int:
    from bot.checkconfig import check_config

    return await check_config()


# Routing is data: each command of bot/cli_parser.py and what runs it.
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": _serve,
    "diagnose": _in_a_loop(_diagnose),
    "fix": _in_a_loop(_fix),
    "fixes": _in_a_loop(_fixes),
    "sandbox": _in_a_loop(_sandbox),
    "sweep": _in_a_loop(_sweep),
    "report": _in_a_loop(_report),
    "deliver": _in_a_loop(_deliver_forever),
    "check-config": _in_a_loop(_check_config),
    "manifest": _manifest,
    "intent": _intent,
}
