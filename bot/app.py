"""The aiohttp app: `POST /api/messages` through Bot Framework's CloudAdapter, `GET /healthz` (alive) and
`GET /readyz` (the store and a token work).

One factory, `create_app`, used by `python -m bot serve` and by the tests; what it runs on (clients, store,
sandbox) comes from `bot/setup.py`, as the CLI's commands do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator

import requests
from aiohttp import web
from azure.core.exceptions import DeserializationError
from botbuilder.core import TurnContext
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, AdaptiveCardInvokeResponse
from botframework.connector.auth import AuthenticateRequestResult
from opentelemetry.trace import SpanKind

from bot.clients.auth import scope_for
from bot.clients.factory import Clients
from bot.config import Settings
from bot.fixing import Fixer, register_followups
from bot.health import Readiness
from bot.helpdesk.desk import Helpdesk
from bot.helpdesk.senders import register_senders
from bot.investigation import UserCache
from bot.notify.outbox import close_adapter, connector_adapter, deliverer_for, drain_forever
from bot.notify.progress import Progress
from bot.notify.sweep import sweep_forever
from bot.observability import activity_scope, quiet_client_mistakes, tracer
from bot.setup import Fixture, wiring
from bot.store import Store
from bot.teams import messages
from bot.teams.bot import SyncDoctorBot
from bot.teams.envelope import activity_problem

__all__ = ["BOT", "create_app"]

log = logging.getLogger(__name__)

BOT = web.AppKey("bot", SyncDoctorBot)
ADAPTER = web.AppKey("adapter", CloudAdapter)
READINESS = web.AppKey("readiness", Readiness)


def _adapter(settings: Settings) -> CloudAdapter:
    """The outbox's adapter (its sends end within the lease), which also tells a user their turn failed."""
    adapter = connector_adapter(settings)

    async def on_error(context: TurnContext, error: Exception) -> None:
        log.exception("turn %s failed", context.activity.id, exc_info=error)
        try:
            await context.send_activity(messages.SOMETHING_WRONG)
        except Exception:  # the connector itself may be what failed
            log.warning("could not tell the user about the failed turn %s", context.activity.id)

    adapter.on_turn_error = on_error
    return adapter


async def messages_route(request: web.Request) -> web.StreamResponse:
    """Check the envelope (a clean 4xx for junk, never a 500), then hand the activity to CloudAdapter.

    Each refused request is logged once, on one line and without a traceback: a client's mistake is not
    the bot's error."""
    if "application/json" not in request.headers.get("Content-Type", ""):
        return _refused(415, "expected an application/json Bot Framework activity")
    body, problem = await _json_body(request)
    if problem is not None:
        return problem
    activity_id = body.get("id") if isinstance(body, dict) else None
    reason = activity_problem(body)
    if reason is not None:
        return _refused(400, reason, activity_id)
    try:
        activity = Activity().deserialize(_teams_tenant_id(body))
    except (DeserializationError, RecursionError) as exc:  # activity_problem should have said why
        return _refused(400, "the body is not a Bot Framework activity", activity_id, cause=exc)
    # CloudAdapter.process() would serialise the invoke response's body a second time and fail (botbuilder
    # 4.17), so this route calls process_activity() itself: the same authentication and turn pipeline.
    adapter = request.app[ADAPTER]
    attributes = {"teams.activity.type": activity.type, "teams.activity.name": activity.name or ""}
    with (
        activity_scope(activity.id),
        tracer.start_as_current_span("teams turn", kind=SpanKind.SERVER, attributes=attributes) as span,
    ):
        authenticated = await _authenticate(adapter, activity, request.headers.get("Authorization", ""))
        if isinstance(authenticated, web.Response):
            span.set_attribute("http.response.status_code", authenticated.status)
            return authenticated
        invoke = await adapter.process_activity(authenticated, activity, request.app[BOT].on_turn)
    if invoke is None:
        return web.Response(status=201)
    # botbuilder's answer to an invoke it has no handler for (501) or can't read; a 403 is the bot's own
    # refusal, already logged with its reason.
    if invoke.status >= 400 and invoke.status != 403:
        log.warning(
            "refused activity %s: %d for invoke %s",
            _printable(activity.id),
            invoke.status,
            _printable(activity.name),
        )
    return web.json_response(_invoke_body(invoke.body), status=invoke.status)


async def _json_body(request: web.Request) -> tuple[object, web.Response | None]:
    """The request's JSON, or the refusal to send instead (too large, not text, not JSON, too deep)."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None, _refused(413, f"the body is larger than {request.client_max_size} bytes")
    try:
        return json.loads(raw.decode(request.charset or "utf-8")), None
    except (ValueError, LookupError):  # not JSON, not in its charset, or an unknown charset
        return None, _refused(400, "the body is not valid JSON")
    except RecursionError:
        return None, _refused(400, "the body nests too deeply")


async def _authenticate(
    adapter: CloudAdapter, activity: Activity, auth_header: str
) -> AuthenticateRequestResult | web.Response:
    """Bot Framework's check of the bearer token; a refusal (one log line, no traceback) when it fails.

    botbuilder raises PermissionError for some bad tokens and lets PyJWT's errors (DecodeError,
    ExpiredSignatureError...), bare Exceptions (an algorithm it doesn't allow) and IndexError or KeyError
    (a key id or claim it can't find) escape for others: all of them are the caller's bad token."""
    try:
        return await adapter.bot_framework_authentication.authenticate_request(activity, auth_header)
    except requests.RequestException as exc:  # Bot Framework's signing keys could not be fetched
        log.warning("activity %s: could not check its token: %s", _printable(activity.id), _brief(exc))
        return web.json_response({"error": "could not check the token just now"}, status=503)
    except Exception as exc:
        return _refused(401, "unauthorized", activity.id, cause=exc)


def _teams_tenant_id(body: object) -> object:
    """Teams names the conversation's tenant `tenantId`; botbuilder's model reads only `tenantID` and
    would drop it, and with it the check that it agrees with `channelData.tenant.id`."""
    conversation = body.get("conversation") if isinstance(body, dict) else None
    if (
        isinstance(body, dict)
        and isinstance(conversation, dict)
        and "tenantId" in conversation
        and "tenantID" not in conversation
    ):
        return {**body, "conversation": {**conversation, "tenantID": conversation["tenantId"]}}
    return body


def _refused(
    status: int, reason: str, activity_id: object = None, *, cause: Exception | None = None
) -> web.Response:
    """An error answer with a JSON body, logged on one line (the cause's type and message, no traceback)."""
    because = f" ({_brief(cause)})" if cause is not None else ""
    log.warning("refused activity %s: %d %s%s", _printable(activity_id), status, reason, because)
    return web.json_response({"error": reason}, status=status)


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_printable(str(exc), 200)}"


def _printable(value: object, limit: int = 80) -> str:
    """A client-sent value fit for one log line: a string, cut short, with control characters replaced."""
    if not isinstance(value, str) or not value:
        return "-"
    return "".join(c if c.isprintable() else "?" for c in value[:limit]) + ("…" if len(value) > limit else "")


def _invoke_body(body: object) -> object:
    if isinstance(body, dict | list | str) or body is None:
        return body
    error = getattr(body, "value", None)
    if isinstance(body, AdaptiveCardInvokeResponse) and isinstance(error, Exception):
        # botbuilder 4.17 refuses a malformed adaptiveCard/action with an Exception msrest can't serialise
        code, message = (*(str(arg) for arg in error.args), "", "")[:2]
        return {
            "statusCode": int(body.status_code),
            "type": body.type,
            "value": {"code": code, "message": message},
        }
    return serializer_helper(body)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP. Nothing else is checked, so a restart can't fix what fails."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers and a Dataverse token can be had; 503 names what fails."""
    checks = await request.app[READINESS].run()
    ready = all(c.ok for c in checks)
    body = {"status": "ready" if ready else "not ready", "checks": [c.to_dict() for c in checks]}
    return web.json_response(body, status=200 if ready else 503)


class _LiveProgress:
    """The live progress line of `serve` on a terminal: a fresh one per sweep (its counts and rate are that
    sweep's), which the delivery rounds between sweeps add their sends to. Nothing without a terminal."""

    def __init__(self) -> None:
        self.current: Progress | None = None

    def new_sweep(self) -> Progress | None:
        self.current = Progress(sys.stderr, "serve") if sys.stderr.isatty() else None
        return self.current

    def sent(self, n: int) -> None:
        if n and self.current is not None:
            self.current.add(sent=n)


def create_app(
    settings: Settings,
    *,
    sandbox: Fixture = None,
    clients: Clients | None = None,
    store: Store | None = None,
    delivery_interval: float = 5.0,
    deliver: bool = True,
) -> web.Application:
    """The bot's web app.

    Args:
        sandbox: True for the sample org, or a fixture path: start the simulator in-process and use it.
        clients: use these clients (tests); otherwise built from settings or the sandbox.
        store: use this store (tests); otherwise the one STORE_URL names.
        deliver: send the outbox from this process; False leaves it to `python -m bot deliver` workers.
    """
    quiet_client_mistakes()
    app = web.Application(client_max_size=256 * 1024)
    app[ADAPTER] = _adapter(settings)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with wiring(settings, fixture=sandbox, clients=clients, store=store) as wired:
            if wired.sandbox is not None:
                local = wired.sandbox
                log.warning(
                    "serving the sandbox org from %s at %s", local.running.sandbox.org.source, local.url
                )
            chosen, chosen_store = wired.clients, wired.store()
            investigator = wired.investigator(user_cache=UserCache())
            deliverer = deliverer_for(settings, chosen_store, app[ADAPTER])
            # One-click fixes: applied as whoever confirms, checked again after the next sync.
            fixer = Fixer(chosen_store, investigator, recheck_after=settings.fix_recheck_seconds)
            # the helpdesk's kinds and the checks after a fix; the outbox's own are registered already
            register_senders(deliverer, fix_history=fixer.history)
            register_followups(deliverer, investigator)
            app[READINESS] = Readiness(chosen_store, chosen.tokens, scope_for(chosen.dataverse.base_url))
            helpdesk = Helpdesk(
                chosen_store,
                deliverer if deliver else None,
                investigator,
                settings.helpdesk_agent_ids,
                fix_history=fixer.history,
            )
            app[BOT] = SyncDoctorBot(
                investigator,
                allowed_tenants=settings.allowed_tenant_ids,
                budget=settings.diagnosis_budget_seconds,
                helpdesk=helpdesk,
                fixer=fixer,
            )
            # On a terminal, sweeps and sends show live on stderr; otherwise each sweep logs one line.
            live = _LiveProgress()
            # Retries come due and interrupted deliveries resume: the outbox is drained while serving.
            workers = (
                [asyncio.create_task(drain_forever(deliverer, every=delivery_interval, on_round=live.sent))]
                if deliver
                else []
            )
            if settings.sweep_interval_minutes > 0:
                sweep = sweep_forever(
                    chosen.dataverse,
                    chosen_store,
                    every=settings.sweep_interval_minutes * 60,
                    then=helpdesk.kick,
                    retention_days=settings.outbox_retention_days,
                    progress=live.new_sweep,
                )
                workers.append(asyncio.create_task(sweep))
            try:
                yield
            finally:
                for worker in workers:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                await helpdesk.settle()
                close_adapter(app[ADAPTER])

    app.cleanup_ctx.append(resources)
    app.router.add_post("/api/messages", messages_route)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
