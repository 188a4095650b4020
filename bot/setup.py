"""The composition roots' wiring: settings, or a sandbox fixture, -> clients, tokens and the store.

`serve` (`create_app`), `diagnose` and `sweep` open what they run on here, and `check-config` tests the
same pieces, so which org is asked, with which identity, keeping what where, is decided in one place.
Nothing below `bot/` reads settings to build these: the clients take URLs and a token provider.

Usage::

    async with wiring(settings, fixture=args.fixture) as wired:  # None: settings; a path or True: sandbox
        report = await wired.investigator().run(user, record, "appointment")
        store = wired.store()  # opened on first use, closed with everything else
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from bot.clients.auth import MsalTokenProvider
from bot.clients.factory import Clients, clients_for
from bot.clients.http import RetryPolicy
from bot.config import Settings, has_storage_key, is_azure_connection_string
from bot.errors import ConfigError
from bot.investigation import Investigator, UserCache
from bot.store import Store, open_store

if TYPE_CHECKING:
    from bot.sandbox import LocalOrg

__all__ = [
    "Fixture",
    "Wiring",
    "bot_tokens_from_settings",
    "clients_from_settings",
    "missing_settings",
    "preflight",
    "store_from_settings",
    "tokens_from_settings",
    "wiring",
]

# A sandbox to run instead of the org the settings name: a fixture file, or True for the sample org.
Fixture: TypeAlias = str | Path | bool | None


def missing_settings(settings: Settings) -> list[str]:
    """The settings the production clients need that are not set: with a managed identity
    (`AZURE_USE_MANAGED_IDENTITY`) its client id, else an app registration's tenant, client id and secret."""
    required: tuple[tuple[str, object], ...] = (
        ("DATAVERSE_URL", settings.dataverse_url),
        ("AZURE_CLIENT_ID", settings.azure_client_id),
    )
    if not settings.azure_use_managed_identity:
        secret = settings.azure_client_secret.get_secret_value() if settings.azure_client_secret else ""
        required = (
            ("DATAVERSE_URL", settings.dataverse_url),
            ("AZURE_TENANT_ID", settings.azure_tenant_id),
            ("AZURE_CLIENT_ID", settings.azure_client_id),
            ("AZURE_CLIENT_SECRET", secret),
        )
    return [name for name, value in required if not value]


def preflight(settings: Settings, *, fixture: Fixture = None) -> None:
    """Refuse now what `wiring` would refuse later: before a port is bound or a sandbox started.

    Raises:
        FixtureError: the fixture can't be loaded (named, with the problem).
        ConfigError: naming the settings the clients need that are not set.
    """
    if fixture is True:
        return
    if fixture:
        from bot.sandbox import load_fixture  # the simulator loads only when it is used

        load_fixture(fixture)
        return
    _require_settings(settings)


def _require_settings(settings: Settings) -> None:
    missing = missing_settings(settings)
    if missing:
        raise ConfigError(
            f"not set: {', '.join(missing)}. Set them to reach your Dynamics 365 org, "
            "or use the sample org (--fixture bot/sandbox/sample_org.json, or serve --sandbox)."
        )


def tokens_from_settings(settings: Settings, *, policy: RetryPolicy | None = None) -> MsalTokenProvider:
    """MSAL tokens for Dataverse and Graph, as the managed identity (`AZURE_USE_MANAGED_IDENTITY`) or with
    the app registration's secret; call only when `missing_settings` is empty.

    `policy` is the clients' own: a token is retried and timed like the request that needs it."""
    assert settings.azure_client_id  # for mypy
    if settings.azure_use_managed_identity:
        return MsalTokenProvider.managed_identity(settings.azure_client_id, policy=policy)
    assert settings.azure_tenant_id and settings.azure_client_secret  # for mypy
    return MsalTokenProvider(
        tenant_id=settings.azure_tenant_id,
        client_id=settings.azure_client_id,
        client_secret=settings.azure_client_secret.get_secret_value(),
        authority_host=settings.azure_authority_host,
        policy=policy,
    )


def bot_tokens_from_settings(settings: Settings) -> MsalTokenProvider | None:
    """The bot's own Bot Framework identity, or None when it has none: the managed identity MicrosoftAppId
    (`MicrosoftAppType=UserAssignedMSI`, as botbuilder then uses it), else MicrosoftAppId/Password."""
    if settings.microsoft_app_type == "UserAssignedMSI":
        return MsalTokenProvider.managed_identity(settings.microsoft_app_id)
    if not (settings.microsoft_app_id and settings.microsoft_app_password):
        return None
    return MsalTokenProvider(
        tenant_id=settings.microsoft_app_tenant_id or "botframework.com",
        client_id=settings.microsoft_app_id,
        client_secret=settings.microsoft_app_password.get_secret_value(),
        authority_host=settings.azure_authority_host,
    )


def clients_from_settings(settings: Settings, *, policy: RetryPolicy | None = None) -> Clients:
    """Clients for the real services named in settings, with MSAL client-credentials tokens.

    Raises:
        ConfigError: naming the missing settings.
    """
    _require_settings(settings)
    assert settings.dataverse_url  # for mypy: _require_settings() checked it
    return clients_for(
        settings.dataverse_url,
        settings.graph_url,
        tokens_from_settings(settings, policy=policy),
        verify=settings.verify(),
        policy=policy,
    )


def store_from_settings(settings: Settings) -> Store:
    """The store STORE_URL names, open; the caller closes it.

    Raises:
        ConfigError: a STORE_URL this build can't open.
        StoreError: the store can't be opened or written.
    """
    url = settings.store_url.get_secret_value()
    if is_azure_connection_string(url) and not has_storage_key(url):
        from bot.store.azure import AzureStore  # the Azure SDK loads only when it is used
        from bot.store.azure.identity import storage_credential

        return AzureStore(
            url,
            credential=storage_credential(**_storage_identity(settings)),
            ca_bundle=settings.requests_ca_bundle or settings.ssl_cert_file,
        )
    return open_store(url)


def _storage_identity(settings: Settings) -> dict[str, str]:
    """Who opens a STORE_URL without a key: the app's identity, as for Dataverse and Graph.

    Raises:
        ConfigError: no identity is configured.
    """
    client_id = settings.azure_client_id or ""
    if settings.azure_use_managed_identity:
        return {"managed_identity_client_id": client_id}
    secret = settings.azure_client_secret.get_secret_value() if settings.azure_client_secret else ""
    if not (settings.azure_tenant_id and client_id and secret):
        raise ConfigError(
            "STORE_URL has no account key: it is opened with the app's identity. Set AZURE_USE_MANAGED_IDENTITY=true "
            "and AZURE_CLIENT_ID, or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or give the "
            "connection string's AccountKey)"
        )
    return {
        "tenant_id": settings.azure_tenant_id,
        "client_id": client_id,
        "client_secret": secret,
        "authority_host": settings.azure_authority_host,
    }


@dataclass
class Wiring:
    """What a composition root runs on. Everything opened for it closes when `wiring` ends.

    Attributes:
        clients: Dataverse and Graph, for the org the settings name or for the sandbox.
        sandbox: the sandbox running for a fixture, or None.
    """

    settings: Settings
    clients: Clients
    sandbox: LocalOrg | None
    _stack: AsyncExitStack = field(repr=False)
    _store: Store | None = None

    def store(self) -> Store:
        """The store given to `wiring`, else the one STORE_URL names (opened on first use).

        Raises:
            ConfigError: a STORE_URL this build can't open.
            StoreError: the store can't be opened or written.
        """
        if self._store is None:
            self._store = store_from_settings(self.settings)
            self._stack.push_async_callback(self._store.close)
        return self._store

    def investigator(self, *, user_cache: UserCache | None = None) -> Investigator:
        """The diagnosis over these clients, within the settings' time budget."""
        return Investigator(
            self.clients.dataverse,
            self.clients.graph,
            budget=self.settings.diagnosis_budget_seconds,
            user_cache=user_cache,
        )


@asynccontextmanager
async def wiring(
    settings: Settings,
    *,
    fixture: Fixture = None,
    clients: Clients | None = None,
    store: Store | None = None,
) -> AsyncIterator[Wiring]:
    """Open the clients (and, on first use, the store) for one run; close them all when it ends.

    Args:
        fixture: a fixture path, or True for the sample org: start the simulator in-process and use it.
            None (or False): the org the settings name.
        clients: use these (tests); the caller closes them. They win over `fixture`.
        store: use this store (tests); the caller closes it.

    Raises:
        FixtureError: the fixture can't be loaded.
        ConfigError: naming the settings the clients need that are not set.
    """
    async with AsyncExitStack() as stack:
        sandbox: LocalOrg | None = None
        if clients is None and fixture:
            from bot.sandbox import local_org  # the simulator loads only when it is used

            sandbox = await stack.enter_async_context(local_org(None if fixture is True else fixture))
            clients = sandbox.clients
        elif clients is None:
            clients = clients_from_settings(settings)
            stack.push_async_callback(clients.aclose)
        yield Wiring(settings, clients, sandbox, stack, store)
