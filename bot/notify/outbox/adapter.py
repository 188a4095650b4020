"""The CloudAdapter the bot sends through, made to send at Teams' pace: requests that end within the outbox
lease, and what botbuilder would otherwise make anew for every reply and every proactive send kept instead.

botbuilder builds, for each turn and each proactive send, new credentials (a new MSAL app, so with an app
password a new token from Entra each time, fetched on the event loop), a new connector client and a new
user-token client. Kept per app, cloud and service URL, a proactive send costs 3.5 ms of CPU instead of 4.4
(`bench/send_cost.py`) and the token comes from MSAL's cache, fetched off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import msal
import requests
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AppCredentials,
    AuthenticateRequestResult,
    AuthenticationConstants,
    ClaimsIdentity,
    ConnectorFactory,
    ManagedIdentityAppCredentials,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from msrest.authentication import Authentication
from msrest.universal_http.requests import ClientRetryPolicy

from bot.config import Settings
from bot.notify.outbox.connector import in_time

__all__ = ["close_adapter", "connector_adapter", "send_timeout"]

log = logging.getLogger(__name__)

_KEPT = 32  # clients kept per kind: one per app, audience and service URL (a handful in practice)
_TOKEN_CHECK = 60.0  # seconds between asking MSAL for the token, off the event loop, ahead of sends
_TOKEN_SERVE = 240.0  # seconds a token MSAL gave is served to the signing (MSAL gives none with < 300 left)
_TOKEN_RETRY = 5.0  # seconds before asking Entra again after a refusal (sends meanwhile fail with it)


def send_timeout(lease_seconds: float) -> float:
    """How long one request to the Bot Connector may take: started in the first half of the lease, it ends
    before the lease does, leaving time to record the outcome."""
    return max(0.5, lease_seconds / 3)


def connector_adapter(settings: Settings, *, login_url: str | None = None) -> CloudAdapter:
    """A CloudAdapter for these settings whose requests end within `send_timeout` of the outbox lease.

    `login_url`: the Entra endpoint the bot's tokens for the Bot Connector come from, when not the public
    cloud's (`https://login.microsoftonline.com/botframework.com`): a private cloud's, or the sandbox's."""
    password = settings.microsoft_app_password.get_secret_value() if settings.microsoft_app_password else ""
    config = _BotFrameworkConfig(
        APP_ID=settings.microsoft_app_id,
        APP_PASSWORD=password,
        APP_TYPE=settings.microsoft_app_type,
        APP_TENANTID=settings.microsoft_app_tenant_id,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=login_url,
        # Entra's hosts are known to MSAL; any other would be looked up at Entra's instance discovery.
        VALIDATE_AUTHORITY=login_url is None,
    )
    return CloudAdapter(_Authentication(config, send_timeout=send_timeout(settings.outbox_lease_seconds)))


def close_adapter(adapter: CloudAdapter) -> None:
    """Close the HTTP sessions `adapter` keeps (MSAL's, to Entra): when the app stops."""
    authentication = adapter.bot_framework_authentication
    if isinstance(authentication, _Authentication):
        authentication.close()


def _cheap_retry_tables() -> None:
    """Make msrest's retry table cheap to build: the same table, a thousandth of the CPU.

    Every client botbuilder builds (a connector client, a user-token client) builds a retry table as
    `[i for i in range(999) if i not in self.safe_codes]` over a 500-item *list*: 3 ms of CPU apiece. The
    same codes as a frozenset give the same table (msrest only tests membership in it); the retries
    themselves are off anyway (`_KeptConnectors`)."""
    codes: object = ClientRetryPolicy.safe_codes
    if isinstance(codes, list):
        # msrest declares a list; only `in` is ever asked of it. Typed loosely here for that reason.
        policy: Any = ClientRetryPolicy
        policy.safe_codes = frozenset(codes)


_cheap_retry_tables()


@dataclass(frozen=True)
class _BotFrameworkConfig:
    """The shape ConfigurationBotFrameworkAuthentication reads."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str
    TO_CHANNEL_FROM_BOT_LOGIN_URL: str | None = None
    VALIDATE_AUTHORITY: bool = True


class _Kept(OrderedDict[Hashable, Any]):
    """The most recently used `_KEPT` values, by key."""

    def get_fresh(self, key: Hashable) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def keep(self, key: Hashable, value: Any) -> None:
        self[key] = value
        while len(self) > _KEPT:
            self.popitem(last=False)


class _TimedHttp(requests.Session):
    """MSAL's HTTP client for the bot's tokens: every request gives up after `timeout` seconds (requests
    waits forever by default; botbuilder's managed identity client used one such)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self.timeout
        return super().request(*args, **kwargs)


class _TokenSource:
    """The MSAL client botbuilder's credentials take their token from (an app's with a password, or the
    managed identity's), made when first used (MSAL's constructor may ask Entra for its metadata), with
    `validate_authority` as configured (botbuilder drops it: a private cloud's endpoint would be looked up
    at Entra's instance discovery) and a timeout on every request.

    MSAL is asked only ahead of a send, in a worker thread (`fetch`, from `_KeptCredentials.token_ready`):
    its requests block. msrest's signing, on the event loop, is answered from here: the last token MSAL
    gave, for 4 minutes at most and never in its last minute, or, when that fetch failed a moment
    ago, its error again (the send fails as it would have). Only past both would the signing ask MSAL
    itself, as botbuilder always did: every send and reply fetches ahead first."""

    def __init__(
        self, make: Callable[[_TimedHttp], Any], ask: Callable[[Any], Any], http: _TimedHttp
    ) -> None:
        """`make(http)` makes the MSAL client; `ask(client)` asks it for the token (MSAL's answer)."""
        self._make = make
        self._ask = ask
        self._http = http
        self._client: Any = None
        self._lock = threading.Lock()
        self.checked = -_TOKEN_CHECK  # when MSAL was last asked (monotonic)
        self._token: tuple[str, float] | None = None  # the last token, and until when it is served (epoch)
        self._refusal: tuple[Exception, float] | None = None  # the last fetch's error, and when (epoch)

    def fetch(self) -> None:
        """In a worker thread: ask MSAL (its cache, or Entra when the token is due for renewal).

        Raises:
            PermissionError: Entra or the identity endpoint refused, in their words.
        """
        try:
            answer = self._ask(self._made())
            if "access_token" not in answer:
                raise PermissionError(
                    f"{answer.get('error', 'no token')}: {answer.get('error_description', 'no description')}"
                )
        except Exception as exc:
            self._refusal = (exc, time.time())
            raise
        # Wall-clock time: a monotonic clock stops while the host sleeps, the token's life doesn't. A token
        # is served until a minute before its end (half its life, if shorter): MSAL hands a fresh one out
        # whatever its life.
        now, lasts = time.time(), float(answer.get("expires_in") or 0)
        served = min(_TOKEN_SERVE, lasts - min(60.0, lasts / 2))
        self._token, self._refusal = (answer["access_token"], now + served), None

    def due(self) -> bool:
        """Whether to ask MSAL again before the next send: a minute since, a token that ends within a
        minute (or none), or `_TOKEN_RETRY` after a refusal."""
        since = time.monotonic() - self.checked
        if self._refusal is not None:
            return since >= _TOKEN_RETRY
        return self._token is None or self._token[1] - time.time() < _TOKEN_CHECK or since >= _TOKEN_CHECK

    def acquire_token_silent(self, *args: Any, **kwargs: Any) -> Any:
        return self._kept() or self._made().acquire_token_silent(*args, **kwargs)

    def acquire_token_for_client(self, *args: Any, **kwargs: Any) -> Any:
        return self._kept() or self._made().acquire_token_for_client(*args, **kwargs)

    def close(self) -> None:
        self._http.close()

    def _kept(self) -> dict[str, str] | None:
        """The signing's answer without MSAL: the token fetched ahead, or that fetch's error again."""
        now, token, refusal = time.time(), self._token, self._refusal
        if token is not None and now < token[1]:
            return {"access_token": token[0], "token_type": "Bearer"}
        if refusal is not None and now - refusal[1] < _TOKEN_RETRY:
            raise refusal[0].with_traceback(None)
        return None

    def _made(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make(self._http)
            return self._client


class _KeptCredentials(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """One credentials object (and so one MSAL client and its token cache) per app, scope and login
    endpoint; its token fetched off the event loop before a send (`token_ready`), each request to Entra or
    the managed identity endpoint given up after `timeout` seconds."""

    def __init__(self, inner: ServiceClientCredentialsFactory, *, timeout: float) -> None:
        self._inner = inner
        self._timeout = timeout
        self._kept = _Kept()
        self._making = asyncio.Lock()
        self._checking = asyncio.Lock()

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        key = (app_id, oauth_scope, login_endpoint, validate_authority)
        async with self._making:  # two first sends at once make one
            credentials: Authentication | None = self._kept.get_fresh(key)
            if credentials is None:
                credentials = await self._inner.create_credentials(
                    app_id, oauth_scope, login_endpoint, validate_authority
                )
                source = self._token_source(credentials, validate_authority)
                if source is not None and isinstance(credentials, AppCredentials):
                    # read where botbuilder's credentials look for their MSAL client (made when None)
                    credentials.app = source
                self._kept.keep(key, credentials)
            return credentials

    def _token_source(self, credentials: Authentication, validate_authority: bool) -> _TokenSource | None:
        """The MSAL client `credentials` are to use, or None when they fetch no token (no app id)."""
        # With an app id but no password (MultiTenant allows it) the fetch fails, off the event loop.
        if isinstance(credentials, MicrosoftAppCredentials) and credentials.microsoft_app_id:
            app_id, password = credentials.microsoft_app_id, credentials.microsoft_app_password
            authority = credentials.oauth_endpoint
            scope = credentials.oauth_scope
            scopes = [scope if scope.endswith("/.default") else f"{scope}/.default"]  # as botbuilder asks
            return _TokenSource(
                lambda http: msal.ConfidentialClientApplication(
                    client_id=app_id,
                    client_credential=password,
                    authority=authority,
                    validate_authority=validate_authority,
                    http_client=http,
                ),
                lambda client: client.acquire_token_for_client(scopes=scopes),  # MSAL's cache first
                _TimedHttp(self._timeout),
            )
        if isinstance(credentials, ManagedIdentityAppCredentials) and credentials.microsoft_app_id:
            identity = msal.UserAssignedManagedIdentity(client_id=credentials.microsoft_app_id)
            resource = credentials.oauth_scope
            return _TokenSource(
                lambda http: msal.ManagedIdentityClient(
                    identity,
                    http_client=http,
                    # botbuilder's own, shared by every managed identity client it makes
                    token_cache=ManagedIdentityAppCredentials.global_token_cache,
                ),
                lambda client: client.acquire_token_for_client(resource=resource),
                _TimedHttp(self._timeout),
            )
        return None

    async def token_ready(self, credentials: Authentication) -> None:
        """Have the token fetched before a send or reply: MSAL asked every `_TOKEN_CHECK` seconds (it renews
        the token well before it ends), or `_TOKEN_RETRY` after a refusal. Never raises: a refusal is
        logged, and the send fails with it."""
        app = getattr(credentials, "app", None)
        if not isinstance(app, _TokenSource):
            return  # no token to fetch: no app id
        async with self._checking:
            if not app.due():
                return
            try:
                await asyncio.to_thread(app.fetch)
            except Exception as exc:
                log.warning("no token for the Bot Connector: %s", exc)
            app.checked = time.monotonic()  # not when cancelled: the next send asks again

    def close(self) -> None:
        for credentials in list(self._kept.values()):
            app = getattr(credentials, "app", None)
            if isinstance(app, _TokenSource):
                app.close()
        self._kept.clear()


def _closing(session: Any, config: Any, local_config: Any, **requests_kwargs: Any) -> dict[str, Any]:
    """msrest's per-request hook: each send on its own connection, closed after it, as when every send
    had a client of its own. A kept client's connections would otherwise stay open between sends, open
    beyond the life of whoever made the adapter (nothing closes an adapter)."""
    requests_kwargs["headers"]["Connection"] = "close"
    return requests_kwargs


class _KeptConnectors(ConnectorFactory):  # type: ignore[misc]
    """Connector clients whose HTTP requests give up after `timeout` seconds, one attempt each; one per
    service URL and audience for this factory's app, shared by every turn and send (msrest's async client
    already shares its session between the requests it runs in worker threads).

    botbuilder sends with `requests` in a worker thread: cancelling the awaiting coroutine would not stop
    a send. Only this timeout ends it, so a proactive send ends before its outbox lease does (and no
    other worker sends the same message while this one may still get through)."""

    def __init__(
        self,
        inner: ConnectorFactory,
        timeout: float,
        kept: _Kept,
        app: Hashable,
        credentials: _KeptCredentials,
    ) -> None:
        self._inner = inner
        self._timeout = timeout
        self._kept = kept
        self._app = app
        self._credentials = credentials

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (self._app, service_url, audience)
        client = self._kept.get_fresh(key)
        if client is None:
            client = await self._made(service_url, audience)
            self._kept.keep(key, client)
        await self._credentials.token_ready(client.config.credentials)
        in_time()  # a token fetch (this send's, or one it waited for) may have taken a while
        return client

    async def _made(self, service_url: str, audience: str | None) -> ConnectorClient:
        client = await self._inner.create(service_url, audience)
        client.config.connection.timeout = self._timeout
        # One attempt per send. msrest asks urllib3 to retry POSTs too (up to 3 times, backoff up to 90 s)
        # after a read timeout or a 429/5xx; urllib3 1.26 obeys (urllib3 2 ignores its old setting name):
        # a message Teams had accepted but not yet answered would be posted again, and a send could outlast
        # its outbox lease. The outbox retries instead, with the lease, pacing and Retry-After it keeps.
        client.config.retry_policy.retries = 0
        client.config.session_configuration_callback = _closing
        return client


def _app_of(claims_identity: ClaimsIdentity) -> Hashable:
    """What botbuilder makes a connector factory from: the bot's app id, as the claims say it (as text:
    a claim may be of any JSON type)."""
    claims = claims_identity.claims or {}
    names = (
        AuthenticationConstants.AUDIENCE_CLAIM,
        AuthenticationConstants.APP_ID_CLAIM,
        AuthenticationConstants.AUTHORIZED_PARTY,
        AuthenticationConstants.VERSION_CLAIM,
    )
    return tuple(repr(claims.get(name)) for name in names)


class _Authentication(ConfigurationBotFrameworkAuthentication):  # type: ignore[misc]
    def __init__(self, config: _BotFrameworkConfig, *, send_timeout: float) -> None:
        # A token is fetched after the send's "in time" check (`Connector`), and the send may take
        # `send_timeout` after it: the fetch gets a third of that, so the send still ends within its lease.
        self._credentials = _KeptCredentials(
            ConfigurationServiceClientCredentialFactory(config), timeout=send_timeout / 3
        )
        super().__init__(config, credentials_factory=self._credentials)
        self._send_timeout = send_timeout
        self._connectors = _Kept()
        self._token_clients = _Kept()

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._kept(super().create_connector_factory(claims_identity), claims_identity)

    def _kept(self, inner: ConnectorFactory, claims_identity: ClaimsIdentity) -> _KeptConnectors:
        return _KeptConnectors(
            inner, self._send_timeout, self._connectors, _app_of(claims_identity), self._credentials
        )

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        """An incoming turn's replies go through the kept connector clients and tokens too (botbuilder
        makes this factory itself, not through `create_connector_factory`)."""
        result = await super().authenticate_request(activity, auth_header)
        result.connector_factory = self._kept(result.connector_factory, result.claims_identity)
        return result

    def close(self) -> None:
        self._credentials.close()
        self._connectors.clear()
        self._token_clients.clear()

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        key = _app_of(claims_identity)
        client = self._token_clients.get_fresh(key)
        if client is None:
            client = await super().create_user_token_client(claims_identity)
            self._token_clients.keep(key, client)
        return client
