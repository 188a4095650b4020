"""`check-config` shows what is set without its secrets and says which connection fails; `/readyz` too."""

from __future__ import annotations

import pytest

from bot.checkconfig import check_config
from bot.cli import main
from bot.sandbox import LocalOrg
from bot.sandbox.azurite import Azurite
from bot.sandbox.server import RunningSandbox
from bot.store import SqliteStore, connection_string_fields
from tests.support.org import CLIENT_ID, SECRET, env
from tests.support.teams import running_bot


def bot_identity(monkeypatch: pytest.MonkeyPatch, secret: str = SECRET) -> None:
    monkeypatch.setenv("MicrosoftAppId", CLIENT_ID)
    monkeypatch.setenv("MicrosoftAppPassword", secret)
    monkeypatch.setenv("MicrosoftAppTenantId", "contoso.example")


async def test_all_connections_pass_and_no_secret_is_printed(
    https_sandbox: RunningSandbox,
    ca_bundle: str,
    azurite: Azurite,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env(monkeypatch, https_sandbox.url)
    bot_identity(monkeypatch)
    monkeypatch.setenv("STORE_URL", azurite.connection_string)
    assert await check_config() == 0
    out = capsys.readouterr().out
    for passed in ("Dataverse token", "Graph token", "Bot Framework token", "store"):
        assert f"PASS  {passed}" in out
    assert "FAIL" not in out
    assert "AZURE_CLIENT_SECRET" in out and "set (hidden)" in out
    assert "Azure Storage account devstoreaccount1 (key hidden)" in out
    account_key = connection_string_fields(azurite.connection_string)["accountkey"]
    assert SECRET not in out and account_key not in out


async def test_a_wrong_secret_fails_by_name_and_exits_3(
    https_sandbox: RunningSandbox,
    ca_bundle: str,
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env(monkeypatch, https_sandbox.url, secret="not-the-secret")
    bot_identity(monkeypatch)
    monkeypatch.setenv("STORE_URL", f"sqlite:///{tmp_path}/s.sqlite3")
    assert await check_config() == 3
    out = capsys.readouterr().out
    assert "FAIL  Dataverse token: Entra" in out and "invalid_client" in out
    assert "FAIL  Graph token" in out and "PASS  Bot Framework token" in out and "PASS  store" in out
    assert "not-the-secret" not in out


def test_unset_and_malformed_settings(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "DATAVERSE_URL",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "MicrosoftAppId",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STORE_URL", f"sqlite:///{tmp_path}/s.sqlite3")
    assert main(["check-config"]) == 3
    out = capsys.readouterr().out
    assert "FAIL  Dataverse and Graph tokens: not set: DATAVERSE_URL, AZURE_TENANT_ID" in out
    monkeypatch.setenv("OUTBOX_LEASE_SECONDS", "soon")
    assert main(["check-config"]) == 2
    assert "OUTBOX_LEASE_SECONDS" in capsys.readouterr().err


def test_a_store_that_cannot_be_opened_is_a_failed_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STORE_URL", "sqlite:////proc/no-such-folder/s.sqlite3")
    assert main(["check-config"]) == 3
    assert "FAIL  store: " in capsys.readouterr().out


async def test_readyz_checks_the_store_and_a_token(local: LocalOrg) -> None:
    async with running_bot(local) as teams:
        ready = await teams.http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert {c["name"] for c in ready.json()["checks"]} == {"store", "dataverse token"}
        assert (await teams.http.get("/healthz")).status_code == 200
    broken = SqliteStore(":memory:")
    await broken.close()
    async with running_bot(local, store=broken) as teams:
        response = await teams.http.get("/readyz")
        assert response.status_code == 503
        [failed] = [c for c in response.json()["checks"] if not c["ok"]]
        assert failed["name"] == "store" and failed["detail"] == "the SQLite store :memory: is closed"
