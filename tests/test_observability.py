"""Logs and traces of a real turn: JSON lines tagged with the activity id, spans for the turn and for each
Dataverse and Graph request, and neither carries what the user wrote, a token or an e-mail address."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.observability import JsonFormatter, safe_path
from bot.sandbox import LocalOrg
from bot.sandbox.connector import FakeConnector
from tests.support.org import ALEX
from tests.support.processes import bot_env, free_port
from tests.support.repo import ROOT
from tests.support.teams import Teams, running_bot
from tests.support.timing import until

QUESTION = "why is my Quarterly review with Contoso not in Outlook"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process's tracer provider, set once: spans of every turn in this module land here."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_a_turn_is_one_trace_and_its_logs_carry_the_activity_id(
    local: LocalOrg, spans: InMemorySpanExporter, json_log: io.StringIO
) -> None:
    spans.clear()
    async with running_bot(local) as teams:
        activity = teams.activity(user=ALEX, text=QUESTION)
        assert (await teams.send(activity)).status_code in (200, 201)
    finished = spans.get_finished_spans()
    [turn] = [s for s in finished if s.name == "teams turn"]
    calls = [s for s in finished if s.name.startswith(("Dataverse ", "Graph "))]
    assert {s.name for s in calls} >= {"Dataverse GET", "Graph GET"}
    assert all(s.context.trace_id == turn.context.trace_id for s in calls)  # one trace per turn
    assert all(s.attributes and s.attributes["http.response.status_code"] == 200 for s in calls)
    recorded = json.dumps([dict(s.attributes or {}) for s in finished])
    assert "Quarterly" not in recorded and "@" not in recorded and "Bearer" not in recorded

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    ours = [line for line in lines if line.get("activity_id") == activity["id"]]
    assert ours and all(line["trace_id"] == f"{turn.context.trace_id:032x}" for line in ours)
    assert "Quarterly" not in json_log.getvalue() and "Bearer" not in json_log.getvalue()


def test_paths_in_spans_hide_keys_and_addresses() -> None:
    assert safe_path("/v1.0/users/alexw@contoso.com/calendarView") == "/v1.0/users/{user}/calendarView"
    assert safe_path("/api/data/v9.2/systemusers(5a1e0000-0000-0000-0000-000000000001)") == (
        "/api/data/v9.2/systemusers(…)"
    )


async def test_serve_prints_json_logs_and_console_spans(tmp_path: Path) -> None:
    """A local run with OTEL_TRACES_EXPORTER=console shows both, the way the README does."""
    connector = FakeConnector.unlimited()  # the reply lands at once: the turn (and its span) ends
    await connector.start()
    port = free_port()
    env = bot_env(tmp_path / "store.sqlite3", OTEL_TRACES_EXPORTER="console", LOG_FORMAT="json")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "serve", "--sandbox", "--port", str(port)),
            cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=out,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await until(lambda: _healthy(http, process, log), "the bot to answer /healthz", seconds=60)
            teams = Teams(http=http, connector=connector)
            activity = teams.activity(user=ALEX, text="Quarterly review isn't on my calendar")
            await http.post("/api/messages", json=activity)
            await until(lambda: '"name": "teams turn"' in log.read_text(), "the turn's span", seconds=60)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=60)
        await connector.close()
    text = log.read_text()
    json_lines = [json.loads(line) for line in text.splitlines() if line.startswith('{"time"')]
    assert any(line.get("activity_id") == activity["id"] for line in json_lines)
    assert '"name": "Dataverse GET"' in text and '"service.name": "sync-doctor"' in text
    assert "Quarterly" not in text and "quarterly" not in text and "alexw@" not in text
    assert '"logger": "httpx"' not in text  # its INFO lines print whole URLs: addresses, searched subjects
    assert os.environ.get("OTEL_TRACES_EXPORTER") != "console"  # the setting stayed in the child


async def test_whole_traces_reach_application_insights(tmp_path: Path) -> None:
    """With APPLICATIONINSIGHTS_CONNECTION_STRING, Azure Monitor's exporter sends the turn and its Dataverse
    requests to the ingestion endpoint the string names: here a loopback one that records what it gets."""
    received: list[str] = []

    async def track(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        received.append(body.decode(errors="replace"))
        items = received[-1].count('"iKey"')
        return web.json_response({"itemsReceived": items, "itemsAccepted": items, "errors": []})

    ingestion = web.Application()
    ingestion.router.add_post("/{tail:.*}", track)
    runner = web.AppRunner(ingestion)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    connector = FakeConnector.unlimited()
    await connector.start()
    port = free_port()
    key = "00000000-0000-0000-0000-000000000000"
    env = bot_env(
        tmp_path / "store.sqlite3",
        APPLICATIONINSIGHTS_CONNECTION_STRING=f"InstrumentationKey={key};IngestionEndpoint={endpoint};LiveEndpoint={endpoint}",
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",  # no calls home from a test
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    with (tmp_path / "serve.log").open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "serve", "--sandbox", "--port", str(port)),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )

    def sent() -> str:
        return "\n".join(received)

    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await until(
                lambda: _healthy(http, process, tmp_path / "serve.log"),
                "the bot to answer /healthz",
                seconds=60,
            )
            await Teams(http=http, connector=connector).say("check my mailbox", user=ALEX)
            # Batches leave every 200 ms here.
            await until(
                lambda: '"teams turn"' in sent() and "/api/data/v9.2/systemusers" in sent(),
                "the turn and its Dataverse requests at the ingestion endpoint",
                seconds=60,
            )
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=60)
        await connector.close()
        await runner.cleanup()
    assert '"teams turn"' in sent() and "/api/data/v9.2/systemusers" in sent()  # the turn and its children
    assert "check my mailbox" not in sent() and "$filter" not in sent() and "alexw@" not in sent()


async def _healthy(http: httpx.AsyncClient, process: asyncio.subprocess.Process, log: Path) -> bool:
    assert process.returncode is None, f"the bot exited with {process.returncode}: see {log}"
    with contextlib.suppress(httpx.HTTPError):
        return (await http.get("/healthz")).status_code == 200
    return False
