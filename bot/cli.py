"""`python -m bot`: the command line (design.md section 3). Thin: it calls what the bot calls.

Exit codes: 0 a diagnosis ran (whatever it found), 2 usage or input error, 3 a backend was unreachable
or refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any, TextIO

from bot.clients.factory import clients_from_settings, missing_settings
from bot.config import load_settings
from bot.diagnosis import RECORD_TYPES, RecordType, Report
from bot.errors import (
    AmbiguousRecordError,
    BackendError,
    ConfigError,
    FixtureError,
    InputError,
    StoreError,
)
from bot.investigation import Investigator
from bot.observability import configure as configure_observability

__all__ = ["main"]

EXIT_OK, EXIT_USAGE, EXIT_BACKEND = 0, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        print(f"… {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bot", description="Sync Doctor: why don't Dynamics 365 records reach Exchange?"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser(
        "serve",
        help="run the bot",
        description="Run the bot: POST /api/messages for Teams (Bot Framework), GET /healthz.",
    )
    serve.add_argument(
        "--sandbox",
        nargs="?",
        const=True,
        default=None,
        metavar="FIXTURE",
        help="also run the Dataverse + Graph simulator with the sample org (or FIXTURE) and use it",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3978, help="port (default 3978)")
    serve.add_argument(
        "--no-deliver",
        dest="deliver",
        action="store_false",
        help="answer turns only; leave the outbox to `python -m bot deliver` workers (shared store)",
    )

    deliver = commands.add_parser(
        "deliver",
        help="a delivery worker: send the outbox until stopped",
        description=(
            "Send queued ticket cards and notices until stopped (Ctrl+C or SIGTERM). Run several beside "
            "`serve --no-deliver` instances on one Azure STORE_URL: leases keep them from sending twice."
        ),
    )
    deliver.add_argument(
        "--every", type=float, default=1.0, help="seconds to wait when nothing is due (default 1)"
    )

    diagnose = commands.add_parser(
        "diagnose",
        help="diagnose one user's mailbox, or one of their records",
        description="Run the diagnosis the bot runs, for one user and optionally one record.",
    )
    diagnose.add_argument("--user", required=True, help="Entra object id or email (UPN) of the user")
    diagnose.add_argument(
        "--record", help="the record's id, or words from its subject (omit for a mailbox check)"
    )
    diagnose.add_argument(
        "--type", dest="record_type", choices=RECORD_TYPES, default="appointment", help="record type"
    )
    diagnose.add_argument(
        "--fixture",
        help="serve this fixture (design.md section 6) through the local sandbox and diagnose against it",
    )
    diagnose.add_argument(
        "--json", action="store_true", help="print the report as JSON (design.md section 4)"
    )

    intent = commands.add_parser(
        "intent",
        help="show how chat messages are understood",
        description="Route each TEXT (or each line of standard input) and print one JSON line per input.",
    )
    intent.add_argument("text", nargs="*", help="messages (default: read lines from standard input)")

    sweep = commands.add_parser(
        "sweep",
        help="find people whose mailbox can't sync appointments and tell each once",
        description="The proactive sweep: set-based, paged reads of users and mailboxes; one notice per problem.",
    )
    sweep.add_argument(
        "--dry-run", action="store_true", help="say who would be told and why; send and write nothing"
    )
    sweep.add_argument("--fixture", help="sweep this fixture through the local sandbox")
    sweep.add_argument("--json", action="store_true", help="print the result as JSON")
    sweep.add_argument(
        "--deliver-for", type=float, default=600.0, metavar="SECONDS", help="deliver for at most this long"
    )

    commands.add_parser(
        "check-config",
        help="show the configuration (secrets masked) and test each connection",
        description=(
            "Print every setting (secrets masked), then test what the bot needs: a token for Dataverse, "
            "one for Graph, one for the Bot Framework, and the store (write and read back). Exit 0 when "
            "all pass, 3 when a connection fails, 2 when the configuration itself is invalid."
        ),
    )

    manifest = commands.add_parser(
        "manifest",
        help="build and validate the Teams app package",
        description="Build the Teams app package zip (manifest.json + icons) and validate it against the official schema.",
    )
    manifest.add_argument("--out", default="manifest/build/sync-doctor.zip", help="where to write the zip")
    manifest.add_argument("--bot-id", help="the bot's Microsoft App ID (default: MicrosoftAppId)")

    sandbox = commands.add_parser(
        "sandbox",
        help="run the Dataverse + Graph simulator alone",
        description="Serve a fixture as a Dataverse Web API, Microsoft Graph and Entra token endpoint on loopback.",
    )
    sandbox.add_argument("--fixture", help="fixture file (default: the shipped sample org)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    sandbox.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help='inject a fault, e.g. \'{"route": "dataverse", "status": 429, "retry_after": 2, "times": 3}\'',
    )
    sandbox.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "diagnose":
            return asyncio.run(_diagnose(args))
        if args.command == "sandbox":
            return asyncio.run(_sandbox(args))
        if args.command == "sweep":
            return asyncio.run(_sweep(args))
        if args.command == "deliver":
            return asyncio.run(_deliver_forever(args))
        if args.command == "check-config":
            from bot.checkconfig import check_config

            return asyncio.run(check_config())
        if args.command == "manifest":
            return _manifest(args)
        if args.command == "intent":
            return _intent(args.text)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return EXIT_OK
    parser.error(f"unknown command {args.command}")
    raise AssertionError("unreachable")


async def _diagnose(args: argparse.Namespace) -> int:
    record_type: RecordType = args.record_type
    try:
        async with AsyncExitStack() as stack:
            if args.fixture:
                from bot.sandbox import local_org

                _progress(f"starting the sandbox with {args.fixture}")
                local = await stack.enter_async_context(local_org(args.fixture))
                clients = local.clients
            else:
                clients = clients_from_settings(load_settings())
                stack.push_async_callback(clients.aclose)
            settings_budget = load_settings().diagnosis_budget_seconds
            investigator = Investigator(clients.dataverse, clients.graph, budget=settings_budget)
            _progress(
                f"diagnosing {args.user}" + (f" / {args.record}" if args.record else " (mailbox check)")
            )
            report = await investigator.run(args.user, args.record, record_type)
    except AmbiguousRecordError as exc:
        print(
            f"error: {len(exc.candidates)} {record_type}s match {exc.words!r}; name one with --record ID:",
            file=sys.stderr,
        )
        for c in exc.candidates:
            print(f"  {c.id}  {c.start or '':20}  {c.subject}", file=sys.stderr)
        return EXIT_USAGE
    except (InputError, FixtureError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BackendError as exc:
        print(f"error: could not diagnose: {exc}", file=sys.stderr)
        return EXIT_BACKEND
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


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    try:
        settings = load_settings()
        traces = configure_observability(settings, level=logging.DEBUG if args.verbose else logging.INFO)
        logging.getLogger("bot").info("traces: %s", traces)
        if args.sandbox and args.sandbox is not True:
            from bot.sandbox import load_fixture

            load_fixture(args.sandbox)  # a broken fixture fails here, with its name, not mid-start
        missing = [] if args.sandbox else missing_settings(settings)
        if missing:  # name them before binding a port
            raise ConfigError(f"not set: {', '.join(missing)} (or run with --sandbox to use the sample org)")
    except (ConfigError, FixtureError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    if not settings.microsoft_app_id:
        if not loopback:
            print(
                "error: without MicrosoftAppId requests can't be authenticated; bind to loopback only",
                file=sys.stderr,
            )
            return EXIT_USAGE
        logging.getLogger("bot").warning(
            "MicrosoftAppId is not set: accepting unauthenticated requests on loopback"
        )
    app = create_app(settings, sandbox=args.sandbox, deliver=args.deliver)
    print(f"Sync Doctor listening on http://{args.host}:{args.port}/api/messages", flush=True)
    try:
        web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    except StoreError as exc:  # opened at start-up: a corrupt, read-only or unwritable store
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    return EXIT_OK


async def _sweep(args: argparse.Namespace) -> int:
    from bot.app import deliverer_for
    from bot.notify.sweep import run_sweep
    from bot.store import open_store

    try:
        settings = load_settings()
        async with AsyncExitStack() as stack:
            if args.fixture:
                from bot.sandbox import local_org

                clients = (await stack.enter_async_context(local_org(args.fixture))).clients
            else:
                clients = clients_from_settings(settings)
                stack.push_async_callback(clients.aclose)
            store = open_store(settings.store_url.get_secret_value())
            stack.push_async_callback(store.close)
            _progress("reading users and mailboxes")
            result = await run_sweep(clients.dataverse, store, dry_run=args.dry_run)
            if not args.dry_run:
                deliverer = deliverer_for(settings, store)
                _progress(f"delivering {result.queued} new notice(s) and anything left from earlier runs")
                delivered = await _deliver(deliverer, store, args.deliver_for)
    except (ConfigError, FixtureError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BackendError, StoreError) as exc:
        print(f"error: could not sweep: {exc}", file=sys.stderr)
        return EXIT_BACKEND
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


async def _deliver(deliverer: Any, store: Any, limit_seconds: float) -> int:
    """Deliver until nothing is pending, or only what waits longer than a lease (a helpdesk channel to
    be set up, a long Retry-After), or the time limit: that waits for the next run or `serve`.
    Entries an interrupted run had claimed come due when their lease ends, so they are delivered here."""
    import time

    sent, ends = 0, time.monotonic() + limit_seconds
    while time.monotonic() < ends:
        sent += await deliverer.drain(limit=20)
        waiting, due_in = await store.pending()
        if waiting == 0 or (due_in is not None and due_in > deliverer.lease_seconds + 1):
            if waiting:
                print(
                    f"{waiting} message(s) wait to be retried later (next in {due_in:.0f} s)", file=sys.stderr
                )
            break
        if due_in:  # nothing due now: wait for the next one (a retry, an abandoned lease)
            await asyncio.sleep(min(max(due_in, 0.05), 1.0, max(0.0, ends - time.monotonic())))
    return sent


async def _deliver_forever(args: argparse.Namespace) -> int:
    import signal

    from bot.app import deliverer_for
    from bot.helpdesk.delivery import drain_forever
    from bot.store import open_store

    try:
        settings = load_settings()
        configure_observability(settings, level=logging.DEBUG if args.verbose else logging.INFO)
        store = open_store(settings.store_url.get_secret_value())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    deliverer = deliverer_for(settings, store)
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
    try:
        await worker
    except asyncio.CancelledError:
        pass
    finally:
        await store.close()
    print(f"delivery worker stopped after {total} message(s)", file=sys.stderr, flush=True)
    return EXIT_OK


def _manifest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.manifest import PLACEHOLDER_BOT_ID, build_package

    try:
        bot_id = args.bot_id or load_settings().microsoft_app_id
        if not bot_id:
            print(
                f"warning: no --bot-id or MicrosoftAppId: using {PLACEHOLDER_BOT_ID}; set it before uploading",
                file=sys.stderr,
            )
            bot_id = PLACEHOLDER_BOT_ID
        out = build_package(Path(args.out), bot_id=bot_id)
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Valid Teams app package written to {out}")
    return EXIT_OK


def _intent(texts: list[str]) -> int:
    from bot.teams.intents import classify

    lines = texts or (line.rstrip("\n") for line in sys.stdin)
    for text in lines:
        print(json.dumps(classify(text).to_dict(text)), flush=True)
    return EXIT_OK


async def _sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox import SAMPLE_ORG, Fault, SandboxConfig, load_fixture, start_sandbox

    try:
        org = load_fixture(args.fixture or SAMPLE_ORG)
        faults = [Fault.parse(json.loads(spec)) for spec in args.fault]
    except FixtureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:
        print(f"error: --fault: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.latency_ms:
        faults.insert(0, Fault(route="*", latency=args.latency_ms / 1000))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
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
