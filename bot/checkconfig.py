"""`python -m bot check-config`: what is set (secrets masked) and whether each connection works."""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AsyncExitStack
from typing import Any

from pydantic import SecretStr

from bot.cli_parser import EXIT_BACKEND, EXIT_OK
from bot.clients.auth import scope_for
from bot.config import (
    Settings,
    connection_string_fields,
    has_storage_key,
    is_azure_connection_string,
    load_settings,
)
from bot.errors import StoreError
from bot.health import Check, check_store, check_token, run_checks
from bot.setup import bot_tokens_from_settings, missing_settings, store_from_settings, tokens_from_settings

__all__ = ["check_config", "describe"]

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"


def _shown(name: str, value: Any) -> str:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if name == "STORE_URL" and is_azure_connection_string(secret):
            return _storage_account(secret)
        if name == "STORE_URL":
            return secret
        return "set (hidden)" if secret else "not set"
    if value is None or value == "":
        return "not set"
    return str(value)


def _storage_account(url: str) -> str:
    fields = connection_string_fields(url)
    if has_storage_key(url):
        return f"Azure Storage account {fields.get('accountname', '?')} (key hidden)"
    where = fields.get("accountname") or fields.get("tableendpoint", "?")
    return f"Azure Storage {where}, without a key"


def identities(settings: Settings) -> list[tuple[str, str]]:
    """(what, who asks for its tokens) for each connection: which identity `check-config` tests."""
    app = settings.azure_client_id or "(AZURE_CLIENT_ID not set)"
    if settings.azure_use_managed_identity:
        reader = f"managed identity {app} (AZURE_USE_MANAGED_IDENTITY)"
    else:
        reader = f"app registration {app} with its client secret (AZURE_CLIENT_SECRET)"
    if settings.microsoft_app_type == "UserAssignedMSI":
        bot = f"managed identity {settings.microsoft_app_id} (MicrosoftAppType UserAssignedMSI)"
    elif settings.microsoft_app_id:
        bot = f"app registration {settings.microsoft_app_id} with MicrosoftAppPassword ({settings.microsoft_app_type})"
    else:
        bot = "none: MicrosoftAppId not set, the bot runs unauthenticated, loopback only"
    url = settings.store_url.get_secret_value()
    if not is_azure_connection_string(url):
        store = f"SQLite file {url.removeprefix('sqlite:///')}: no identity"
    elif has_storage_key(url):
        store = f"{_storage_account(url)}: the account key in STORE_URL"
    else:
        store = f"{_storage_account(url)}: as the {reader.split(' (')[0]}"
    return [("Dataverse and Graph", reader), ("Bot Framework", bot), ("store", store)]


def describe(settings: Settings) -> list[tuple[str, str]]:
    """(setting name, value as shown) for every setting, secrets masked."""
    return [
        (field.alias or name, _shown(field.alias or name, getattr(settings, name)))
        for name, field in Settings.model_fields.items()
    ]


async def check_config() -> int:
    """Print every setting (secrets masked) and which identity each connection uses, then test each
    connection the bot needs: a token for Dataverse, one for Graph, one for the Bot Framework (each as the
    identity configured: managed identity or app registration), and the store (write and read back).

    Returns:
        0 when every check passes, 3 when one fails.

    Raises:
        ConfigError: a setting is malformed (the CLI exits 2).
    """
    settings = load_settings()
    print("Settings (secrets masked):")
    rows = describe(settings)
    width = max(len(name) for name, _ in rows)
    for name, shown in rows:
        print(f"  {name:<{width}}  {shown}")
    print("\nIdentities:")
    for what, who in identities(settings):
        print(f"  {what}: {who}")
    async with AsyncExitStack() as opened:
        store = _store_check(settings, opened)  # first: a STORE_URL it can't open leaves nothing unawaited
        results = await run_checks(*_token_checks(settings, opened), store)
    print("\nConnections:")
    for check in results:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    return EXIT_OK if all(c.ok for c in results) else EXIT_BACKEND


def _token_checks(settings: Settings, opened: AsyncExitStack) -> list[Awaitable[Check]]:
    """Dataverse and Graph tokens with the app's identity, then the Bot Framework's with the bot's."""
    checks: list[Awaitable[Check]] = []
    missing = missing_settings(settings)
    if missing:
        checks.append(_failed("Dataverse and Graph tokens", f"not set: {', '.join(missing)}"))
    else:
        assert settings.dataverse_url  # for mypy: missing_settings() checked it
        tokens = tokens_from_settings(settings)
        opened.push_async_callback(tokens.aclose)
        checks += [
            check_token(f"Dataverse token as {tokens.identity}", tokens, scope_for(settings.dataverse_url)),
            check_token(f"Graph token as {tokens.identity}", tokens, scope_for(settings.graph_url)),
        ]
    bot_tokens = bot_tokens_from_settings(settings)
    if bot_tokens is not None:
        opened.push_async_callback(bot_tokens.aclose)
        checks.append(
            check_token(f"Bot Framework token as {bot_tokens.identity}", bot_tokens, BOT_FRAMEWORK_SCOPE)
        )
    return checks


def _store_check(settings: Settings, opened: AsyncExitStack) -> Awaitable[Check]:
    """Write and read back the store; one that can't even be opened is a failed check, not a crash.

    Raises:
        ConfigError: a STORE_URL this build can't open.
    """
    try:
        store = store_from_settings(settings)
    except StoreError as exc:  # corrupt, read-only, unwritable
        return _failed("store", str(exc))
    except ValueError as exc:  # a keyless connection string that names no account
        return _failed("store", f"STORE_URL: {exc}")
    opened.push_async_callback(store.close)
    return check_store(store)


async def _failed(name: str, detail: str) -> Check:
    return Check(name, False, detail)
