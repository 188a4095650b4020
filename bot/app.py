"""The aiohttp app: `POST /api/messages` through Bot Framework's CloudAdapter, `GET /healthz` (alive) and
`GET /readyz` (the store and a token work).

One factory, `create_app`, used by `python -m bot serve` and by the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import ClaimsIdentity, ConnectorFactory
from opentelemetry.trace import SpanKind

from bot.clients.auth import scope_for
from bot.clients.dataverse import DataverseClient
from bot.clients.factory import Clients, clients_from_settings
from bot.config import Settings
from bot.health import Readiness
from bot.helpdesk.delivery import Deliverer, drain_forever, send_timeout
from bot.helpdesk.desk import Helpdesk
from bot.investigation import Investigator, UserCache
from bot.notify.sweep import run_sweep
from bot.observability import activity_scope, tracer
from bot.store import Store, open_store
from bot.teams import messages
from bot.teams.bot import SyncDoctorBot

__all__ = ["BOT", "create_app"]

log = logging.getLogger(__name__)

BOT = web.AppKey("bot", SyncDoctorBot)
ADAPTER = web.AppKey("adapter", CloudAdapter)
READINESS = web.AppKey("readiness", Readiness)


@dataclass(frozen=True)
class _BotFrameworkConfig:
    """The shape ConfigurationBotFrameworkAuthentication reads."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str


class _TimedConnectors(ConnectorFactory):  # type: ignore[misc]
    """Connector clients whose HTTP requests give up after `timeout` seconds.

    botbuilder sends with `requests` in a worker thread: cancelling the awaiting coroutine would not stop
    a send. Only this timeout ends it, so a proactive send ends before its outbox lease does (and no
    other worker sends the same message while this one may still get through)."""

    def __init__(self, inner: ConnectorFactory, timeout: float) -> None:
        self._inner = inner
        self._timeout = timeout

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        client = await self._inner.create(service_url, audience)
        client.config.connection.timeout = self._timeout
        return client


class _Authentication(ConfigurationBotFrameworkAuthentication):  # type: ignore[misc]
    def __init__(self, config: _BotFrameworkConfig, *, send_timeout: float) -> None:
        super().__init__(config)
        self._send_timeout = send_timeout

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _TimedConnectors(super().create_connector_factory(claims_identity), self._send_timeout)


def _adapter(settings: Settings) -> CloudAdapter:
    password = settings.microsoft_app_password.get_secret_value() if settings.microsoft_app_password else ""
    config = _BotFrameworkConfig(
        APP_ID=settings.microsoft_app_id,
        APP_PASSWORD=password,
        APP_TYPE=settings.microsoft_app_type,
        APP_TENANTID=settings.microsoft_app_tenant_id,
    )
    adapter = CloudAdapter(_Authentication(config, send_timeout=send_timeout(settings.outbox_lease_seconds)))

    async def on_error(context: TurnContext, error: Exception) -> None:
        log.exception("turn %s failed", context.activity.id, exc_info=error)
        try:
            await context.send_activity(messages.SOMETHING_WRONG)
        except Exception:  # the connector itself may be what failed
            log.warning("could not tell the user about the failed turn %s", context.activity.id)

    adapter.on_turn_error = on_error
    return adapter


def deliverer_for(settings: Settings, store: Store, adapter: CloudAdapter | None = None) -> Deliverer:
    """The outbox's sender for these settings: `serve`, `sweep` and `deliver` all send the same way."""
    return Deliverer(
        adapter or _adapter(settings),
        store,
        app_id=settings.microsoft_app_id,
        lease_seconds=settings.outbox_lease_seconds,
    )


async def messages_route(request: web.Request) -> web.StreamResponse:
    """Check the envelope (a clean 4xx for junk, never a 500), then hand the activity to CloudAdapter."""
    if "application/json" not in request.headers.get("Content-Type", ""):
        return web.json_response({"error": "expected an application/json Bot Framework activity"}, status=415)
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return web.json_response({"error": "the body is not valid JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return web.json_response({"error": "the body is not a Bot Framework activity (no type)"}, status=400)
    # CloudAdapter.process() would serialise the invoke response's body a second time and fail (botbuilder
    # 4.17), so this route calls process_activity() itself: the same authentication and turn pipeline.
    activity = Activity().deserialize(body)
    auth_header = request.headers.get("Authorization", "")
    attributes = {"teams.activity.type": activity.type, "teams.activity.name": activity.name or ""}
    with (
        activity_scope(activity.id),
        tracer.start_as_current_span("teams turn", kind=SpanKind.SERVER, attributes=attributes) as span,
    ):
        try:
            invoke = await request.app[ADAPTER].process_activity(
                auth_header, activity, request.app[BOT].on_turn
            )
        except PermissionError:
            span.set_attribute("http.response.status_code", 401)
            return web.json_response({"error": "unauthorized"}, status=401)
    if invoke is None:
        return web.Response(status=201)
    body = (
        invoke.body
        if isinstance(invoke.body, dict | list | str) or invoke.body is None
        else serializer_helper(invoke.body)
    )
    return web.json_response(body, status=invoke.status)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP. Nothing else is checked, so a restart can't fix what fails."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers and a Dataverse token can be had; 503 names what fails."""
    checks = await request.app[READINESS].run()
    ready = all(c.ok for c in checks)
    body = {"status": "ready" if ready else "not ready", "checks": [c.to_dict() for c in checks]}
    return web.json_response(body, status=200 if ready else 503)


async def sweep_forever(
    dataverse: DataverseClient, store: Store, helpdesk: Helpdesk, *, every: float
) -> None:
    """The proactive sweep on an interval (SWEEP_INTERVAL_MINUTES); its notices go out through the outbox."""
    while True:
        try:
            result = await run_sweep(dataverse, store, dry_run=False)
            log.info("sweep: %d affected, %d queued", len(result.affected), result.queued)
            helpdesk.kick()
        except RuntimeError as exc:  # another instance is sweeping
            log.info("sweep skipped: %s", exc)
        except Exception:
            log.exception("sweep failed; trying again next time")
        await asyncio.sleep(every)


def create_app(
    settings: Settings,
    *,
    sandbox: str | Path | bool | None = None,
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
    app = web.Application(client_max_size=256 * 1024)
    app[ADAPTER] = _adapter(settings)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            chosen = clients
            if chosen is None and sandbox:
                from bot.sandbox import local_org

                local = await stack.enter_async_context(local_org(None if sandbox is True else sandbox))
                chosen = local.clients
                log.warning(
                    "serving the sandbox org from %s at %s", local.running.sandbox.org.source, local.url
                )
            elif chosen is None:
                chosen = clients_from_settings(settings)
                stack.push_async_callback(chosen.aclose)
            investigator = Investigator(
                chosen.dataverse,
                chosen.graph,
                budget=settings.diagnosis_budget_seconds,
                user_cache=UserCache(),
            )
            chosen_store = store or open_store(settings.store_url.get_secret_value())
            if store is None:
                stack.push_async_callback(chosen_store.close)
            deliverer = deliverer_for(settings, chosen_store, app[ADAPTER])
            app[READINESS] = Readiness(chosen_store, chosen.tokens, scope_for(chosen.dataverse.base_url))
            helpdesk = Helpdesk(
                chosen_store, deliverer if deliver else None, investigator, settings.helpdesk_agent_ids
            )
            app[BOT] = SyncDoctorBot(
                investigator,
                allowed_tenants=settings.allowed_tenant_ids,
                budget=settings.diagnosis_budget_seconds,
                helpdesk=helpdesk,
            )
            # Retries come due and interrupted deliveries resume: the outbox is drained while serving.
            workers = (
                [asyncio.create_task(drain_forever(deliverer, every=delivery_interval))] if deliver else []
            )
            if settings.sweep_interval_minutes > 0:
                every = settings.sweep_interval_minutes * 60
                workers.append(
                    asyncio.create_task(sweep_forever(chosen.dataverse, chosen_store, helpdesk, every=every))
                )
            try:
                yield
            finally:
                for worker in workers:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                await helpdesk.settle()

    app.cleanup_ctx.append(resources)
    app.router.add_post("/api/messages", messages_route)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
