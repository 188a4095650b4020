"""All configuration, read once from the environment (names are a contract: design.md section 9)."""

from __future__ import annotations

import ssl
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

__all__ = [
    "APP_TYPES",
    "Settings",
    "connection_string_fields",
    "has_storage_key",
    "is_azure_connection_string",
    "load_settings",
]

# MicrosoftAppType's values, as botbuilder's ConfigurationServiceClientCredentialFactory reads them.
APP_TYPES = ("MultiTenant", "SingleTenant", "UserAssignedMSI")


def connection_string_fields(url: str) -> dict[str, str]:
    """`Key=value;...` as a dict with lowercase keys (values as given)."""
    return {k.strip().lower(): v for k, _, v in (p.partition("=") for p in url.split(";") if "=" in p)}


def is_azure_connection_string(url: str) -> bool:
    fields = connection_string_fields(url)
    return bool(fields.keys() & {"accountname", "usedevelopmentstorage", "tableendpoint", "queueendpoint"})


def has_storage_key(url: str) -> bool:
    """Whether an Azure Storage connection string carries its own credential (an account key, a SAS, or
    Azurite's development account); one without is opened with the app's Entra identity."""
    fields = connection_string_fields(url)
    return bool(fields.keys() & {"accountkey", "sharedaccesssignature", "usedevelopmentstorage"})


class Settings(BaseSettings):
    """Sync Doctor's settings. Secrets are `SecretStr`: they never appear in logs or reprs."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", env_file=None)

    microsoft_app_id: str = Field("", alias="MicrosoftAppId")
    microsoft_app_password: SecretStr | None = Field(None, alias="MicrosoftAppPassword")
    microsoft_app_type: str = Field("MultiTenant", alias="MicrosoftAppType")
    microsoft_app_tenant_id: str = Field("", alias="MicrosoftAppTenantId")

    dataverse_url: str | None = Field(None, alias="DATAVERSE_URL")
    graph_url: str = Field("https://graph.microsoft.com", alias="GRAPH_URL")
    azure_tenant_id: str | None = Field(None, alias="AZURE_TENANT_ID")
    azure_client_id: str | None = Field(None, alias="AZURE_CLIENT_ID")
    azure_client_secret: SecretStr | None = Field(None, alias="AZURE_CLIENT_SECRET")
    azure_authority_host: str = Field("https://login.microsoftonline.com", alias="AZURE_AUTHORITY_HOST")
    # Dataverse, Graph and a keyless STORE_URL with the user-assigned managed identity whose client id is
    # AZURE_CLIENT_ID (App Service's identity endpoint), instead of AZURE_CLIENT_SECRET: nothing to rotate.
    azure_use_managed_identity: bool = Field(False, alias="AZURE_USE_MANAGED_IDENTITY")

    allowed_tenants: str = Field("", alias="ALLOWED_TENANTS")
    helpdesk_agents: str = Field("", alias="HELPDESK_AGENTS")
    # A secret too: an Azure Storage connection string carries the account key.
    store_url: SecretStr = Field(SecretStr("sqlite:///sync-doctor.sqlite3"), alias="STORE_URL")
    applicationinsights_connection_string: SecretStr | None = Field(
        None, alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )

    # Logs: one JSON object per line (for Azure Monitor, log search) or plain text for a terminal.
    log_format: Literal["json", "text"] = Field("json", alias="LOG_FORMAT")
    # OpenTelemetry's own variable: "console" prints spans to stderr (local runs); Azure Monitor wins if set.
    otel_traces_exporter: str = Field("", alias="OTEL_TRACES_EXPORTER")

    # `serve` runs the proactive sweep this often (0: never; schedule `python -m bot sweep` instead).
    sweep_interval_minutes: float = Field(0.0, alias="SWEEP_INTERVAL_MINUTES", ge=0)

    # How long a delivery worker holds the outbox entries it claimed before others may take them over.
    outbox_lease_seconds: float = Field(30.0, alias="OUTBOX_LEASE_SECONDS", gt=0, le=3600)

    # One delivery leader per store (bot/notify/outbox/leader.py): the processes sharing a store send as one
    # paced sender. Off: each process paces itself for the whole limit and backs off on Teams' 429s (N
    # processes then collide, or leave the limit unused when starved of CPU).
    outbox_leader: bool = Field(True, alias="OUTBOX_LEADER")

    # Sent outbox entries keep their body this long (the delivery report reads it); then only the entry's
    # dedupe key and times stay, so nobody is told twice. Each sweep expires a bounded batch.
    outbox_retention_days: float = Field(30.0, alias="OUTBOX_RETENTION_DAYS", gt=0, le=3650)

    # When the bot re-checks after a fix, in seconds after it (comma-separated, increasing): server-side
    # sync picks a mailbox up every 5-15 minutes, so after about 15 and 40 minutes by default.
    fix_recheck_after: str = Field("900,2400", alias="FIX_RECHECK_AFTER")

    # How long one diagnosis may take, all retries included; Teams wants an answer within 15 s.
    diagnosis_budget_seconds: float = Field(11.0, alias="DIAGNOSIS_BUDGET_SECONDS", gt=0, le=60)

    # The standard CA-bundle variables, so a private CA (or a test one) can be trusted.
    requests_ca_bundle: str | None = Field(None, alias="REQUESTS_CA_BUNDLE")
    ssl_cert_file: str | None = Field(None, alias="SSL_CERT_FILE")

    @field_validator("dataverse_url", "graph_url", "azure_authority_host")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value is None else value
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/")

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if not (url.startswith("sqlite://") or is_azure_connection_string(url)):
            raise ValueError(
                "must be sqlite:///path/to/file.sqlite3 or an Azure Storage connection string "
                "(with AccountKey, or TableEndpoint=...;QueueEndpoint=... for the app's identity)"
            )
        return value

    @field_validator("fix_recheck_after")
    @classmethod
    def _recheck_after(cls, value: str) -> str:
        _seconds_list(value)
        return value

    @field_validator("microsoft_app_type")
    @classmethod
    def _app_type(cls, value: str) -> str:
        if not value.strip():
            return "MultiTenant"  # as botbuilder reads an empty value (sample .env files leave it empty)
        for known in APP_TYPES:
            if value.strip().lower() == known.lower():
                return known
        raise ValueError(f"must be one of {', '.join(APP_TYPES)}")

    @model_validator(mode="after")
    def _identities(self) -> Settings:
        """Each identity is set up one way, completely: botbuilder and MSAL would fail later, less clearly."""
        password = self.microsoft_app_password.get_secret_value() if self.microsoft_app_password else ""
        if self.microsoft_app_type == "UserAssignedMSI":
            if not (self.microsoft_app_id and self.microsoft_app_tenant_id):
                raise ValueError(
                    "MicrosoftAppType UserAssignedMSI needs MicrosoftAppId (the managed identity's client id) "
                    "and MicrosoftAppTenantId"
                )
            if password:
                raise ValueError("MicrosoftAppType UserAssignedMSI takes no MicrosoftAppPassword: unset it")
        single = self.microsoft_app_type == "SingleTenant" and self.microsoft_app_id
        if single and not (password and self.microsoft_app_tenant_id):
            raise ValueError(
                "MicrosoftAppType SingleTenant needs MicrosoftAppPassword and MicrosoftAppTenantId"
            )
        if self.azure_use_managed_identity:
            if not self.azure_client_id:
                raise ValueError(
                    "AZURE_USE_MANAGED_IDENTITY needs AZURE_CLIENT_ID: the managed identity's client id"
                )
            if self.azure_client_secret and self.azure_client_secret.get_secret_value():
                raise ValueError(
                    "AZURE_USE_MANAGED_IDENTITY and AZURE_CLIENT_SECRET are both set: "
                    "choose one (unset the secret to use the managed identity)"
                )
        return self

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should trust: the CA bundle named by the standard variables, else its defaults."""
        cafile = self.requests_ca_bundle or self.ssl_cert_file
        return ssl.create_default_context(cafile=cafile) if cafile else True

    @property
    def fix_recheck_seconds(self) -> tuple[float, ...]:
        """`FIX_RECHECK_AFTER` as seconds after a fix, increasing (validated when read)."""
        return _seconds_list(self.fix_recheck_after)

    @property
    def helpdesk_agent_ids(self) -> frozenset[str]:
        return frozenset(a.strip().lower() for a in self.helpdesk_agents.split(",") if a.strip())

    @property
    def allowed_tenant_ids(self) -> frozenset[str]:
        return frozenset(t.strip().lower() for t in self.allowed_tenants.split(",") if t.strip())


def _seconds_list(value: str) -> tuple[float, ...]:
    """ "900,2400" as (900.0, 2400.0): at least one number of seconds, each positive, increasing, at most
    a week (how long a queued check may wait).

    Raises:
        ValueError: saying what is wrong.
    """
    try:
        seconds = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise ValueError("must be seconds, comma-separated, e.g. 900,2400") from None
    if not seconds:
        raise ValueError("must name at least one number of seconds, e.g. 900,2400")
    if any(not 0 < s <= 7 * 24 * 3600 for s in seconds):
        raise ValueError("each must be more than 0 and at most a week (604800 seconds)")
    if list(seconds) != sorted(set(seconds)):
        raise ValueError("must increase: each is counted from the fix, e.g. 900,2400")
    return seconds


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment.

    Raises:
        ConfigError: naming each malformed setting.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
