"""`check-config` shows what is set without its secrets and says which connection fails; `/readyz` too."""

from __future__ import annotations

import pytest

from bot.checkconfig import check_config
from bot.cli import main
from bot.sandbox import LocalOrg
from bot.sandbox.azurite import Azurite
from bot.sandbox.server import RunningSandbox
from bot.store import SqliteStore, connection_string_fields
from tests.support.identity import identity_endpoint
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
    for passed in (
        f"Dataverse token as app {CLIENT_ID}",
        f"Graph token as app {CLIENT_ID}",
        f"Bot Framework token as app {CLIENT_ID}",
        "store",
    ):
        assert f"PASS  {passed}: " in out
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
    assert f"FAIL  Dataverse token as app {CLIENT_ID}: Entra" in out and "invalid_client" in out
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


IDENTITY = "0b7e5a84-55b1-4b5c-9d0a-3c5d2f1e7a90"


async def test_the_managed_identity_is_what_is_tested_with_no_secret_set(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deployment's settings: every token from App Service's identity endpoint, as the one identity."""
    for name in ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MicrosoftAppPassword"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
        "AZURE_USE_MANAGED_IDENTITY": "true",
        "AZURE_CLIENT_ID": IDENTITY,
        "MicrosoftAppType": "UserAssignedMSI",
        "MicrosoftAppId": IDENTITY,
        "MicrosoftAppTenantId": "contoso.example",
        "STORE_URL": f"sqlite:///{tmp_path}/s.sqlite3",
    }.items():
        monkeypatch.setenv(name, value)
    async with identity_endpoint(monkeypatch, IDENTITY) as endpoint:
        assert await check_config() == 0
    out = capsys.readouterr().out
    assert f"Dataverse and Graph: managed identity {IDENTITY} (AZURE_USE_MANAGED_IDENTITY)" in out
    assert f"Bot Framework: managed identity {IDENTITY} (MicrosoftAppType UserAssignedMSI)" in out
    for passed in ("Dataverse token", "Graph token", "Bot Framework token"):
        assert f"PASS  {passed} as managed identity {IDENTITY}: " in out
    assert sorted(endpoint.resources()) == [
        "https://api.botframework.com",
        "https://contoso.crm.dynamics.com",
        "https://graph.microsoft.com",
    ]
    # the same settings with an identity App Service doesn't have: each token fails, by name
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-0000-4000-8000-000000000000")
    async with identity_endpoint(monkeypatch, IDENTITY):
        assert await check_config() == 3
    out = capsys.readouterr().out
    assert "FAIL  Dataverse token as managed identity 11111111-0000-4000-8000-000000000000: " in out
    assert "No User Assigned or Delegated Managed Identity" in out
    assert f"PASS  Bot Framework token as managed identity {IDENTITY}" in out


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppId": IDENTITY}, "needs MicrosoftAppId"),
        (
            {
                "MicrosoftAppType": "UserAssignedMSI",
                "MicrosoftAppId": IDENTITY,
                "MicrosoftAppTenantId": "contoso.example",
                "MicrosoftAppPassword": "x",
            },
            "takes no MicrosoftAppPassword",
        ),
        ({"MicrosoftAppType": "Managed"}, "must be one of MultiTenant, SingleTenant, UserAssignedMSI"),
        (
            {"AZURE_USE_MANAGED_IDENTITY": "true", "AZURE_CLIENT_ID": IDENTITY, "AZURE_CLIENT_SECRET": "x"},
            "choose one",
        ),
        ({"AZURE_USE_MANAGED_IDENTITY": "yes please"}, "AZURE_USE_MANAGED_IDENTITY"),
    ],
)
def test_an_identity_set_up_halfway_stops_check_config_with_its_name(
    settings: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "MicrosoftAppId",
        "MicrosoftAppTenantId",
        "MicrosoftAppPassword",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config"]) == 2
    assert says in capsys.readouterr().err


def test_an_empty_app_type_is_multitenant_as_botbuilder_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import Settings

    monkeypatch.setenv("MicrosoftAppType", "")
    assert Settings().microsoft_app_type == "MultiTenant"
