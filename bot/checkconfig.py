"""`python -m bot check-config`: what is set (secrets masked) and whether each connection works."""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from typing import Any

from pydantic import SecretStr

from bot.clients.auth import MsalTokenProvider, TokenProvider, scope_for
from bot.clients.factory import missing_settings, tokens_from_settings
from bot.config import Settings, load_settings
from bot.errors import ConfigError, StoreError
from bot.health import Check, check_store, check_token, run_checks
from bot.store import Store, connection_string_fields, is_azure_connection_string, open_store

__all__ = ["check_config", "describe"]

EXIT_OK, EXIT_USAGE, EXIT_BACKEND = 0, 2, 3
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"


def _shown(name: str, value: Any) -> str:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if name == "STORE_URL" and is_azure_connection_string(secret):
            account = connection_string_fields(secret).get("accountname", "?")
            return f"Azure Storage account {account} (key hidden)"
        if name == "STORE_URL":
            return secret
        return "set (hidden)" if secret else "not set"
    if value is None or value == "":
        return "not set"
    return str(value)


def describe(settings: Settings) -> list[tuple[str, str]]:
    """(setting name, value as shown) for every setting, secrets masked."""
    return [
        (field.alias or name, _shown(field.alias or name, getattr(settings, name)))
        for name, field in Settings.model_fields.items()
    ]


async def check_config() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print("Settings (secrets masked):")
    rows = describe(settings)
    width = max(len(name) for name, _ in rows)
    for name, shown in rows:
        print(f"  {name:<{width}}  {shown}")

    checks: list[Awaitable[Check]] = []
    closers: list[TokenProvider] = []
    missing = missing_settings(settings)
    if missing:
        checks.append(_failed("Dataverse and Graph tokens", f"not set: {', '.join(missing)}"))
    else:
        assert settings.dataverse_url  # for mypy: missing_settings() checked it
        tokens = tokens_from_settings(settings)
        closers.append(tokens)
        checks += [
            check_token("Dataverse token", tokens, scope_for(settings.dataverse_url)),
            check_token("Graph token", tokens, scope_for(settings.graph_url)),
        ]
    if settings.microsoft_app_id and settings.microsoft_app_password:
        bot_tokens = MsalTokenProvider(
            tenant_id=settings.microsoft_app_tenant_id or "botframework.com",
            client_id=settings.microsoft_app_id,
            client_secret=settings.microsoft_app_password.get_secret_value(),
            authority_host=settings.azure_authority_host,
        )
        closers.append(bot_tokens)
        checks.append(check_token("Bot Framework token", bot_tokens, BOT_FRAMEWORK_SCOPE))
    else:
        print("\nMicrosoftAppId/MicrosoftAppPassword not set: the bot runs unauthenticated, loopback only")
    store: Store | None = None
    try:
        store = open_store(settings.store_url.get_secret_value())
        checks.append(check_store(store))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:  # corrupt, read-only, unwritable: a failed check, not a crash
        checks.append(_failed("store", str(exc)))
    try:
        results = await run_checks(*checks)
    finally:
        if store is not None:
            await store.close()
        for provider in closers:
            await provider.aclose()
    print("\nConnections:")
    for check in results:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    return EXIT_OK if all(c.ok for c in results) else EXIT_BACKEND


async def _failed(name: str, detail: str) -> Check:
    return Check(name, False, detail)
