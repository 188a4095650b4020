"""The CLI's surface (design.md section 3, a contract): its commands, their flags and the exit codes.

`bot/cli.py` runs what is parsed here; every command has `--help`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from bot.diagnosis import RECORD_TYPES

__all__ = [
    "EXIT_BACKEND",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LOOPBACK",
    "build_parser",
    "since_date",
]

EXIT_OK = 0  # done; a diagnosis that ran, whatever it found
EXIT_USAGE = 2  # usage, input, fixture or configuration error
EXIT_BACKEND = 3  # a backend (Dataverse, Graph, Entra, the store) was unreachable or refused
EXIT_INTERRUPTED = 130  # Ctrl+C
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def since_date(value: str) -> float:
    """`--since`: a date or an ISO 8601 time (UTC when it names no offset), as epoch seconds."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


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
            "Send queued ticket cards, notices and the checks after one-click fixes until stopped (Ctrl+C "
            "or SIGTERM). Run several beside `serve --no-deliver` instances on one Azure STORE_URL: leases "
            "keep them from sending twice. Needs the Dataverse settings, as serve does (or --sandbox)."
        ),
    )
    deliver.add_argument(
        "--every", type=float, default=1.0, help="seconds to wait when nothing is due (default 1)"
    )
    deliver.add_argument(
        "--sandbox",
        nargs="?",
        const=True,
        default=None,
        metavar="FIXTURE",
        help=(
            "check fixes against the simulator with the sample org (or FIXTURE), as serve --sandbox does; "
            "without it the Dataverse settings are needed (the checks after a fix diagnose again)"
        ),
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

    fix = commands.add_parser(
        "fix",
        help="list, apply or undo one-click fixes for a user's diagnosis",
        description=(
            "List the fixes the diagnosis proposes (as diagnose runs it), apply one (--apply) or undo a sync "
            "filter fix (--undo). Every write is made as someone: the user for their own filters, AGENT "
            "(--as) for a mailbox's settings; Dynamics 365 decides whether they may. Exit 0 done, 2 not "
            "applicable, not allowed or refused (the reason on stderr), 3 Dataverse unreachable."
        ),
    )
    fix.add_argument("--user", required=True, help="Entra object id or email (UPN) of the user")
    fix.add_argument("--record", help="the record's id, or words from its subject (omit for the mailbox)")
    fix.add_argument(
        "--type", dest="record_type", choices=RECORD_TYPES, default="appointment", help="record type"
    )
    fix.add_argument("--fixture", help="serve this fixture through the local sandbox and work against it")
    fix.add_argument("--json", action="store_true", help="print the result as JSON")
    action = fix.add_mutually_exclusive_group()
    action.add_argument("--apply", metavar="FIX", help="apply this fix (its id, e.g. add-filter)")
    action.add_argument(
        "--undo",
        metavar="ID",
        help="undo a sync filter fix: its id (the user's latest application of it) or the key `fixes` lists",
    )
    fix.add_argument(
        "--as",
        dest="as_agent",
        metavar="AGENT",
        help="who applies it (Entra object id or email): needed for an agent's fix (a mailbox's settings)",
    )

    fixes = commands.add_parser(
        "fixes",
        help="list the fixes applied, newest first, from the store",
        description="List every fix applied (who, for whom, which fix, its state, when, the result), newest first.",
    )
    fixes.add_argument("--user", help="only this user's (Entra object id)")
    fixes.add_argument("--json", action="store_true", help="print them as JSON")

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

    report = commands.add_parser(
        "report",
        help="every proactive notice and its outcome, from the store",
        description=(
            "List every proactive notice (who, cause, when queued and sent, delivered / failed why / "
            "pending), the people sweeps could not reach, and any other outbox message that was given up. "
            "Read from STORE_URL a page at a time. Times are UTC. Sent notices older than "
            "OUTBOX_RETENTION_DAYS are listed without their detail; people not reached, only while their "
            "sweep's report is kept."
        ),
    )
    report.add_argument(
        "--since",
        type=since_date,
        metavar="DATE",
        help="only what was queued at or after DATE (2026-01-31, or an ISO time; UTC unless it says)",
    )
    form = report.add_mutually_exclusive_group()
    form.add_argument("--csv", dest="form", action="store_const", const="csv", help="CSV with a header row")
    form.add_argument(
        "--json", dest="form", action="store_const", const="json", help="JSON Lines: one object per notice"
    )
    report.set_defaults(form="table")

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
        description=(
            "Build the Teams app package zip (manifest.json + icons) and validate it against the official "
            "schema, shipped with the package. Teams shows the developer name and pages to users: give your "
            "organisation's (placeholders such as example.com or the all-zero id are refused, exit 2)."
        ),
    )
    manifest.add_argument("--out", default="manifest/build/sync-doctor.zip", help="where to write the zip")
    manifest.add_argument("--bot-id", help="the bot's Microsoft App ID (default: MicrosoftAppId)")
    manifest.add_argument(
        "--graph-app-id",
        help="the Entra app that reads Graph, granted TeamMember.Read.Group per team (default: AZURE_CLIENT_ID)",
    )
    manifest.add_argument("--developer-name", default="", help="your organisation, shown as the developer")
    manifest.add_argument("--website-url", default="", metavar="URL", help="https page about the app")
    manifest.add_argument("--privacy-url", default="", metavar="URL", help="https privacy statement")
    manifest.add_argument("--terms-url", default="", metavar="URL", help="https terms of use")
    manifest.add_argument(
        "--app-version",
        metavar="X.Y.Z",
        help="the package's version; Teams takes an upload as an update only when it is higher "
        "(default: Sync Doctor's own version)",
    )

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
