"""Logs and traces: structured JSON logs carrying the activity id, and OpenTelemetry spans for each turn,
each Dataverse or Graph request and each proactive send.

Traces go to Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set, to the console when
OTEL_TRACES_EXPORTER=console (a local look), and nowhere otherwise: the OpenTelemetry API is then a no-op.
Neither logs nor spans carry message text, tokens or e-mail addresses: spans name a request by its
method and path, with keys and addresses in the path replaced.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from bot.config import Settings

__all__ = ["TextFormatter", "activity_scope", "configure", "quiet_client_mistakes", "safe_path", "tracer"]

tracer = trace.get_tracer("sync-doctor")
_activity: contextvars.ContextVar[str | None] = contextvars.ContextVar("sync_doctor_activity", default=None)
_KEYS = re.compile(r"\([^)]*\)")
_ADDRESS = re.compile(r"[^/]*@[^/]*")


def safe_path(path: str) -> str:
    """A request path fit for a span: `/users/alex@contoso.com/calendarView` -> `/users/{user}/calendarView`,
    `systemusers(5a1e...)` -> `systemusers(…)`."""
    return _ADDRESS.sub("{user}", _KEYS.sub("(…)", path))


@contextmanager
def activity_scope(activity_id: str | None) -> Iterator[None]:
    """Tag every log record written in this block (and tasks it starts) with the Teams activity's id."""
    token = _activity.set(activity_id)
    try:
        yield
    finally:
        _activity.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the activity and trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        activity = _activity.get()
        if activity:
            entry["activity_id"] = activity
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = f"{span.trace_id:032x}"
            entry["span_id"] = f"{span.span_id:016x}"
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _escape_controls(text: str) -> str:
    """Control characters as escapes: no value inside a message can start a line of its own."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """`LOG_FORMAT=text`: one line per message for a terminal. A message's own text never forges a line
    (newlines and other control characters in it are escaped); a traceback still prints as one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _escape_controls(record.message)
        return super().formatMessage(record)


class _ClientMistakes(logging.Filter):
    """aiohttp refuses some requests before any route runs (a header over 8 KB, a bad chunk size) and logs
    each at ERROR with a traceback and the start of the header: a client's mistake, so one WARNING line
    with the status and the error's class, and nothing the client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 0) < 500:
            record.msg, record.args = "refused request: %d %s", (error.code, type(error).__name__)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_mistakes() -> None:
    """Install the filter above on aiohttp's server logger (once; `create_app` calls it)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ClientMistakes) for f in server.filters):
        server.addFilter(_ClientMistakes())


def _resource() -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": "sync-doctor"})  # OTEL_SERVICE_NAME and friends still apply


def configure(settings: Settings, *, level: int = logging.INFO) -> str:
    """Set up logging (LOG_FORMAT) and tracing for this process; returns where traces go."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Their INFO lines print whole request URLs: queries carry e-mail addresses and subjects searched for.
    for chatty in ("httpx", "httpcore", "urllib3", "msal", "azure"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    connection = settings.applicationinsights_connection_string
    if connection is not None and connection.get_secret_value():
        from azure.monitor.opentelemetry import configure_azure_monitor

        # Also instruments requests (the Bot Connector client, MSAL) and the Azure SDK (the store).
        # Whole traces or none: the distro's default samples a few spans a second, which keeps a turn's
        # span and drops its Dataverse and Graph children. OTEL_TRACES_SAMPLER still overrides this.
        sampling: dict[str, Any] = {} if os.environ.get("OTEL_TRACES_SAMPLER") else {"sampling_ratio": 1.0}
        configure_azure_monitor(
            connection_string=connection.get_secret_value(),
            logger_name="bot",
            resource=_resource(),
            **sampling,
        )
        return "Azure Monitor"
    if settings.otel_traces_exporter == "console":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

        provider = TracerProvider(resource=_resource())
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        trace.set_tracer_provider(provider)
        return "console"
    return "off"
