"""Thousands of generated malformed activities, bodies and bearer tokens at `/api/messages`.

The bot runs in a process of its own, the way `serve` runs it (one event loop, no access log); Dataverse
and Graph (the sandbox), the Bot Connector and Bot Framework's signing keys are served from this process.
Every request must get a non-5xx answer (501 excepted for an invoke the bot has no handler for: botbuilder's
contract, see test_conversation's test_unknown_invoke_name_is_501), and every refused one exactly one log
line and no traceback. The bot's event loop must never be blocked: a watch on that loop measures the
longest stretch of CPU time it ran without yielding (CPU time, not wall time, so a busy machine doesn't fail
the test), while a poller keeps asking `/healthz` and records what a client sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.sandbox import SAMPLE_ORG, SandboxConfig, start_sandbox
from bot.sandbox.connector import FakeConnector
from bot.sandbox.org import load_fixture
from bot.teams.envelope import MAX_TEXT_CHARS
from tests.support.fuzz_bot import LOG_HEADER
from tests.support.org import ALEX, PLAYGROUND, QUARTERLY
from tests.support.repo import ROOT
from tests.support.teams import TENANT
from tests.support.tokens import APP_ID, KID, UNTRUSTED_KEY, OpenIdServer, claims, jwks, signed, unsigned

T = TypeVar("T")
BOT_ID = "28:sync-doctor"
EMULATOR_ISSUER = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"
# Examples per strategy (FUZZ_EXAMPLES=activities,bodies,tokens to change them): about 3,000 requests.
ACTIVITIES, BODIES, TOKENS = (int(n) for n in os.environ.get("FUZZ_EXAMPLES", "1800,500,800").split(","))


def fuzz_settings(examples: int) -> settings:
    # Reproducible (derandomized, no example database) and bounded: no shrinking, whose length depends on
    # the failure; the falsifying example is printed as generated.
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )


# --- the services, on a thread of their own ----------------------------------------------------------


class LoopThread:
    """An event loop running in a daemon thread; `call` runs a coroutine there and waits for it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def close(self) -> None:
        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()
            await self.loop.shutdown_default_executor()

        try:
            self.call(finish)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


@dataclass
class Services:
    """The sandbox org (Dataverse and Graph) and the Bot Connector: Microsoft's services, in this process."""

    token: str
    sandbox_url: str
    connector: FakeConnector


@contextlib.contextmanager
def services() -> Iterator[Services]:
    thread = LoopThread("services")
    try:
        token = secrets.token_urlsafe(16)

        async def start() -> tuple[Any, FakeConnector]:
            sandbox = await start_sandbox(load_fixture(SAMPLE_ORG), SandboxConfig(static_tokens={token}))
            connector = FakeConnector.unlimited()
            await connector.start()
            return sandbox, connector

        sandbox, connector = thread.call(start)
        try:
            yield Services(token=token, sandbox_url=sandbox.url, connector=connector)
        finally:

            async def stop() -> None:
                await connector.close()
                await sandbox.close()

            thread.call(stop)
    finally:
        thread.close()


# --- the bot, in a process of its own -----------------------------------------------------------------
# As in production, its event loop, garbage collector and GIL are not shared with this test's client and
# generators: what /healthz answers and how long the loop is busy are the bot's own. Its code:
# tests/support/fuzz_bot.py.


@dataclass
class Bot:
    open_url: str
    secured_url: str
    client: httpx.Client

    known: int = 0  # how many lines the process had logged, when last told

    def log_since(self, mark: int) -> tuple[int, list[dict[str, Any]]]:
        answer = self.client.get(f"{self.open_url}/_fuzz/log", params={"since": mark}).json()
        self.known = max(self.known, answer["count"])
        return answer["count"], answer["lines"]

    def logged_while(self, response: httpx.Response) -> list[dict[str, Any]]:
        """What the process logged from when it began handling `response`'s request until now. Its first
        and last line numbers ride on the answer (tests/support/fuzz_bot.py): only an answer it logged
        for, or a refusal, costs a second request."""
        start, end = (
            int(n) for n in response.headers.get(LOG_HEADER, f"{self.known},{self.known}").split(",")
        )
        self.known = max(self.known, end)
        if end == start and response.status_code < 400:
            return []
        return self.log_since(start)[1]

    def watch(self) -> dict[str, float]:
        stats: dict[str, float] = self.client.get(f"{self.open_url}/_fuzz/watch").json()
        return stats


@contextlib.contextmanager
def bot(fakes: Services, openid_url: str, folder: Path, client: httpx.Client) -> Iterator[Bot]:
    ready, output = folder / "ready.json", folder / "bot.log"
    code = "import sys; from tests.support.fuzz_bot import serve_for_fuzz; serve_for_fuzz(*sys.argv[1:])"
    args = [fakes.sandbox_url, fakes.token, openid_url, str(ready)]
    with output.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=out, stderr=out)
    try:
        _wait_for(lambda: ready.exists() or process.poll() is not None, "the bot to start", seconds=60)
        assert ready.exists(), output.read_text()[-3000:]
        open_url, secured_url = json.loads(ready.read_text())
        yield Bot(open_url=open_url, secured_url=secured_url, client=client)
        client.post(f"{open_url}/_fuzz/stop")
        assert process.wait(timeout=30) == 0, output.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- what /healthz answers ----------------------------------------------------------------------------


@dataclass
class HealthPoller:
    """Asks /healthz every 20 ms from a thread of its own, as a load balancer would."""

    url: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(0.02):
                start = time.perf_counter()
                try:
                    status = client.get(f"{self.url}/healthz").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.latencies.append(time.perf_counter() - start)
                if status != 200:
                    self.failures.append(f"status {status}")

    @contextlib.contextmanager
    def running(self) -> Iterator[HealthPoller]:
        thread = threading.Thread(target=self.run, name="healthz", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=15)


# --- generated input ----------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
# Values that are wrong in the ways the schema is likely to be got wrong.
odd_values = st.sampled_from(
    [
        None,
        "",
        "x",
        0,
        -1,
        2**63,
        1.5,
        True,
        [],
        {},
        [None],
        [1],
        [""],
        [{}],
        [[]],
        {"id": 5},
        {"id": None},
        {"id": ""},
        {"id": "29:x", "name": 5},
        {"type": 5},
        # wrong shapes of the models botbuilder reads an invoke's value as
        {"context": "dark"},
        {"context": {"theme": 5}},
        {"parameters": "x"},
        {"parameters": [{"name": 5}]},
        {"commandId": 5},
        {"tabContext": {"tabEntityId": 5}},
        {"action": {"type": "Action.Submit"}},
        {"action": "recheck"},
        {"action": {"type": "Action.Execute", "verb": 5, "data": "x"}},
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "yesterday",
        "2024-01-01T00:00:00Z",
        "2024-01-01T25:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "0000-01-01T00:00:00Z",
        "2024-01-01T00:00:00.12345678901234567890+14:00",
        "2024-01-01T00:00:00" + "9" * 60,
        "http://",
        "ftp://x",
        "javascript:alert(1)",
        "\u0000\u202e\n\r",
        "<at>" * 200,
        QUARTERLY,
        ALEX,
        "recheck",
    ]
)
wrong = odd_values | json_values
hostile_texts = st.builds(
    lambda unit, n: (unit * n)[: MAX_TEXT_CHARS + 10],
    st.sampled_from(
        ["<at>x", "<at>", "<AT>a", "x", "a@", "diagnose ", " ", "’", "appointmnet ", "<at>a</at>"]
    ),
    st.integers(min_value=0, max_value=6000),
) | st.sampled_from(
    [
        ("diagnose " + "@" * MAX_TEXT_CHARS)[: MAX_TEXT_CHARS - 2] + " x",
        ("check " + "a@" * MAX_TEXT_CHARS)[: MAX_TEXT_CHARS - 2] + " x",
        "diagnose megan@contoso.com",
        "diagnose " + QUARTERLY,
        "use this channel for helpdesk",
        "my tickets",
        "open tickets",
        "<at>Sync Doctor</at> why isn't my appointment in outlook",
        "talk to a human",
        "Quarterly review isn't on my calendar",
    ]
)
texts = st.text(max_size=200) | hostile_texts

INVOKE_NAMES = [
    "adaptiveCard/action",
    "composeExtension/fetchTask",
    "composeExtension/query",
    "composeExtension/submitAction",
    "composeExtension/selectItem",
    "composeExtension/setting",
    "composeExtension/queryLink",
    "composeExtension/onCardButtonClicked",
    "fileConsent/invoke",
    "actionableMessage/executeAction",
    "task/fetch",
    "task/submit",
    "tab/fetch",
    "tab/submit",
    "config/fetch",
    "config/submit",
    "signin/verifyState",
    "signin/tokenExchange",
    "healthCheck",
]
VERBS = [
    "recheck",
    "details",
    "pick",
    "check_mailbox",
    "escalate",
    "escalate_send",
    "watch",
    "mute",
    "ticket_assign",
    "ticket_resolve",
    "ticket_reopen",
    "ticket_rerun",
    "nonsense",
]
TYPES = [
    "message",
    "invoke",
    "conversationUpdate",
    "installationUpdate",
    "messageReaction",
    "messageUpdate",
    "messageDelete",
    "event",
    "typing",
    "endOfConversation",
    "command",
]
# Fields a mutation may set to a wrong value or remove (a dotted path reaches inside an object).
PATHS = [
    "type",
    "id",
    "channelId",
    "serviceUrl",
    "timestamp",
    "localTimestamp",
    "localTimezone",
    "expiration",
    "from",
    "from.id",
    "from.name",
    "from.aadObjectId",
    "from.role",
    "recipient",
    "recipient.id",
    "conversation",
    "conversation.id",
    "conversation.isGroup",
    "conversation.conversationType",
    "conversation.tenantId",
    "text",
    "textFormat",
    "locale",
    "name",
    "action",
    "value",
    "value.action",
    "value.action.type",
    "value.action.verb",
    "value.action.data",
    "value.action.data.record",
    "value.action.data.type",
    "value.action.data.user",
    "value.action.data.ticket",
    "value.action.data.version",
    "value.action.data.comment",
    "value.action.data.show_all",
    "value.trigger",
    "entities",
    "attachments",
    "membersAdded",
    "membersRemoved",
    "reactionsAdded",
    "reactionsRemoved",
    "historyDisclosed",
    "suggestedActions",
    "relatesTo",
    "textHighlights",
    "listenFor",
    "semanticAction",
    "replyToId",
    "deliveryMode",
    "importance",
    "callerId",
    "channelData",
    "channelData.tenant",
    "channelData.tenant.id",
    "channelData.team",
    "channelData.team.id",
    "channelData.team.aadGroupId",
    "channelData.channel",
    "channelData.channel.id",
    "channelData.eventType",
    "channelData.settings",
    "channelData.notification",
]
_REMOVE = object()


def _set(activity: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = activity
    for key in parents:
        if not isinstance(node, dict):
            return
        node = node.setdefault(key, {})
    if not isinstance(node, dict):
        return
    if value is _REMOVE:
        node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)  # sampled values are shared between examples


@st.composite
def activities(draw: st.DrawFn, service_url: str) -> dict[str, Any]:
    """A Teams activity of some type, then zero to four of its fields made wrong or removed."""
    kind = draw(st.sampled_from(TYPES) | st.text(max_size=10))
    user = draw(st.sampled_from([ALEX, PLAYGROUND + "21", PLAYGROUND + "99"]) | st.none())
    conversation_type = draw(st.sampled_from(["personal", "groupChat", "channel"]))
    activity: dict[str, Any] = {
        "type": kind,
        "id": f"fuzz-{draw(st.integers(0, 10**9))}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "timestamp": "2024-05-01T10:00:00.1234567Z",
        "from": {"id": f"29:{user}", "name": "Alex Wilber", **({"aadObjectId": user} if user else {})},
        "recipient": {"id": BOT_ID, "name": "Sync Doctor"},
        "conversation": {"id": "a:fuzz", "conversationType": conversation_type, "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
    }
    if conversation_type == "channel":
        activity["channelData"] |= {"channel": {"id": "19:c"}, "team": {"id": "19:t", "aadGroupId": "g"}}
    if kind == "message":
        activity["text"] = draw(texts)
    elif kind == "invoke":
        activity["name"] = draw(st.sampled_from(INVOKE_NAMES) | st.text(max_size=20))
        data = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "record": st.sampled_from([QUARTERLY, "not-an-id"]) | wrong,
                    "type": st.sampled_from(["appointment", "contact", "task"]) | wrong,
                    "user": st.sampled_from([ALEX, PLAYGROUND + "21"]) | wrong,
                    "ticket": st.integers(-5, 5) | wrong,
                    "version": st.integers(-5, 5) | wrong,
                    "comment": texts,
                    "subject": texts,
                    "show_all": wrong,
                },
            )
        )
        verb = draw(st.sampled_from(VERBS) | st.text(max_size=10))
        activity["value"] = {
            "action": {"type": "Action.Execute", "verb": verb, "data": data},
            "trigger": "manual",
        }
    elif kind in ("conversationUpdate", "installationUpdate"):
        activity["membersAdded"] = [{"id": BOT_ID}, {"id": f"29:{user}"}]
        activity["action"] = draw(st.sampled_from(["add", "remove", "remove-upgrade"]))
        activity["channelData"]["eventType"] = draw(
            st.sampled_from(["channelCreated", "teamRenamed", "teamMemberAdded", "x"])
        )
    elif kind == "messageReaction":
        activity["reactionsAdded"] = [{"type": "like"}]
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(PATHS))
        _set(activity, path, draw(st.just(_REMOVE) | wrong | texts))
    return activity


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str | None


def _nested(depth: int, dicts: bool) -> str:
    return ('{"a":' * depth + "1" + "}" * depth) if dicts else ("[" * depth + "]" * depth)


bodies = st.one_of(
    st.builds(Body, st.binary(max_size=300), st.just("application/json")),
    st.builds(
        Body,
        st.builds(lambda v: json.dumps(v).encode(), json_values),
        st.sampled_from(
            ["application/json", "application/json; charset=utf-16", "application/json; charset=nope", None]
        ),
    ),
    st.builds(
        lambda depth, dicts: Body(
            f'{{"type":"message","value":{_nested(depth, dicts)}}}'.encode(), "application/json"
        ),
        st.integers(1, 60_000),
        st.booleans(),
    ),
    st.builds(
        lambda n: Body(b'{"type":"message","text":"' + b"x" * n + b'"}', "application/json"),
        st.integers(200_000, 400_000),
    ),
    st.sampled_from(
        [
            Body(b'{"type":"message","text":"\\ud800"}', "application/json"),
            Body(b'{"type":"message","text":"\\u0000"}', "application/json"),
            Body(b'{"type": 1e999}', "application/json"),
            Body(b'{"type":"message","id":' + b"9" * 5000 + b"}", "application/json"),
            Body(b"\xff\xfe{}", "application/json"),
            Body(b'{"type":"message"}', "text/plain"),
            Body(b"", "application/json"),
            Body(b"null", "application/json"),
        ]
    ),
)


@dataclass(frozen=True)
class Token:
    header: str
    valid: bool | None  # signed by the trusted key for this bot, in date, for this serviceUrl (None: maybe)


@st.composite
def tokens(draw: st.DrawFn, service_url: str) -> Token:
    """A bearer token: well-formed and valid, subtly wrong (audience, issuer, dates, key, algorithm), or
    junk."""
    if draw(st.integers(0, 7)) == 0:
        text = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300))
        scheme = draw(st.sampled_from(["Bearer ", "", "bearer ", "Basic "]))
        return Token(header=(scheme + text).strip(), valid=False)
    now = int(time.time())
    changes: dict[str, Any] = {}
    valid: bool | None = True
    # claim, a wrong value, and whether leaving the claim out makes the token invalid (PyJWT and botbuilder
    # require neither exp nor nbf).
    for claim, bad, required in [
        ("iss", st.sampled_from(["https://login.example.com", EMULATOR_ISSUER, ""]) | wrong, True),
        ("aud", st.sampled_from(["22222222-2222-4222-8222-222222222222", ""]) | wrong, True),
        ("serviceurl", st.sampled_from(["https://evil.example.com/", service_url + "x"]) | wrong, True),
        ("exp", st.sampled_from([now - 3600, now - 86400 * 365, "tomorrow", [now + 3600], True]), False),
        ("nbf", st.sampled_from([now + 3600, "later", {"at": now}]), False),
    ]:
        if draw(st.integers(0, 5)) == 0:
            if draw(st.booleans()):
                changes[claim] = None  # left out
                valid = valid and not required
            else:
                changes[claim] = draw(bad)
                valid = False
    for claim in draw(st.lists(st.sampled_from(["ver", "appid", "azp", "tid"]), max_size=2, unique=True)):
        values = st.sampled_from(["1.0", "2.0", APP_ID, "33333333-3333-4333-8333-333333333333"]) | wrong
        changes[claim] = draw(values)
        valid = None if valid or valid is None else False  # may read as an emulator's or a skill's token
    payload = claims(service_url, **changes)
    how = draw(
        st.sampled_from(["trusted"] * 3 + ["untrusted", "none", "hs256", "other-kid", "no-kid", "tampered"])
    )
    if how == "trusted":
        token = signed(payload)
    elif how == "untrusted":
        token, valid = signed(payload, key=UNTRUSTED_KEY), False
    elif how == "none":
        token, valid = unsigned(payload), False
    elif how == "hs256":
        token, valid = signed(payload, key="a-shared-secret-of-enough-length-for-hs256", alg="HS256"), False
    elif how == "other-kid":
        token, valid = signed(payload, kid=f"{KID}-{draw(st.integers(0, 9))}"), False
    elif how == "no-kid":
        token, valid = signed(payload, kid=None), False
    else:
        head, body, signature = signed(payload).split(".")
        token, valid = f"{head}.{body}.{signature[::-1]}", False
    return Token(header=f"Bearer {token}", valid=valid)


# --- the test -----------------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def _check(
    running: Bot, tally: Tally, send: Callable[[], httpx.Response], what: str, allow_501: bool = False
) -> httpx.Response:
    """Send one request: a non-5xx answer, and one log line with no traceback when it is refused."""
    response = send()
    lines = running.logged_while(response)
    tally.requests += 1
    tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
    assert response.status_code < 500 or (allow_501 and response.status_code == 501), (
        f"{response.status_code} {response.text[:200]} for {what}"
    )
    if response.status_code >= 400:
        shown = [f"{line['logger']}: {line['message'][:150]}" for line in lines]
        assert len(lines) == 1, f"{len(lines)} log lines {shown} for {response.status_code} {what}"
    for line in lines:
        assert not line["traceback"] and line["level"] < logging.ERROR, f"{line} for {what}"
    return response


def _spread(latencies: list[float]) -> str:
    if not latencies:
        return "no polls"
    ms = sorted(x * 1000 for x in latencies)
    return (
        f"{len(ms)} polls, median {statistics.median(ms):.1f} ms, "
        f"p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.1f} ms, max {ms[-1]:.1f} ms"
    )


def _typing(service_url: str) -> dict[str, Any]:
    """An activity that needs no reply: a reply would need a real Entra token for the secured bot."""
    return {
        "type": "typing",
        "id": "fuzz-token",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": f"29:{ALEX}", "aadObjectId": ALEX},
        "recipient": {"id": BOT_ID},
        "conversation": {"id": "a:fuzz", "conversationType": "personal"},
    }


# A failing example of 28 KB of text is reported as it is, not as a warning that its repr is long.
@pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")
def test_fuzz_never_a_5xx_one_line_per_refusal_and_the_loop_never_blocked(tmp_path: Path) -> None:
    started = time.perf_counter()
    tally = Tally()
    with (
        OpenIdServer(jwks()) as keys,
        services() as fakes,
        httpx.Client(timeout=30) as client,
        bot(fakes, keys.url, tmp_path, client) as running,
        HealthPoller(running.open_url).running() as health,
    ):
        service_url = fakes.connector.url
        # The baseline: /healthz on an idle bot (the machine may be busy all the same).
        _wait_for(lambda: len(health.latencies) >= 40, "40 polls of /healthz before the fuzz")
        baseline = list(health.latencies)

        @fuzz_settings(ACTIVITIES)
        @given(activity=activities(service_url))
        def post_activities(activity: dict[str, Any]) -> None:
            unhandled = activity.get("type") == "invoke" and activity.get("name") != "adaptiveCard/action"
            _check(
                running,
                tally,
                lambda: client.post(f"{running.open_url}/api/messages", json=activity),
                json.dumps(activity)[:600],
                allow_501=unhandled,
            )

        @fuzz_settings(BODIES)
        @given(body=bodies)
        def post_bodies(body: Body) -> None:
            headers = {"Content-Type": body.content_type} if body.content_type else {}
            _check(
                running,
                tally,
                lambda: client.post(
                    f"{running.open_url}/api/messages", content=body.content, headers=headers
                ),
                f"{body.content[:200]!r} as {body.content_type}",
            )

        @fuzz_settings(TOKENS)
        @given(token=tokens(service_url))
        def post_tokens(token: Token) -> None:
            headers = {"Authorization": token.header} if token.header else {}
            response = _check(
                running,
                tally,
                lambda: client.post(
                    f"{running.secured_url}/api/messages", json=_typing(service_url), headers=headers
                ),
                f"{token}",
            )
            expected = {True: (201,), False: (401,), None: (201, 401)}[token.valid]
            assert response.status_code in expected, f"{response.status_code} for {token}"

        post_activities()
        post_bodies()
        post_tokens()
        # Still serving after all that.
        sane = {**_typing(service_url), "type": "message", "text": "help", "id": "fuzz-last"}
        assert client.post(f"{running.open_url}/api/messages", json=sane).status_code in (200, 201)
        watch = running.watch()
        _, everything = running.log_since(0)
    wall = time.perf_counter() - started
    during = health.latencies[len(baseline) :]
    summary = (
        f"fuzz: {tally.requests} requests in {wall:.1f} s, statuses {dict(sorted(tally.statuses.items()))}; "
        f"bot loop: longest CPU stretch without yielding {watch['cpu_stall'] * 1000:.1f} ms "
        f"({watch['cpu_stall_with_gc'] * 1000:.1f} ms with garbage collection; longest collection "
        f"{watch['gc_pause'] * 1000:.1f} ms), longest wall-clock gap {watch['wall_stall'] * 1000:.1f} ms "
        f"over {watch['ticks']} ticks; /healthz during "
        f"the fuzz: {_spread(during)}; idle before it: {_spread(baseline)}"
    )
    print(summary)
    assert tally.requests >= ACTIVITIES + BODIES + TOKENS
    assert not [line for line in everything if line["traceback"] or line["level"] >= logging.ERROR]
    assert health.failures == [], health.failures[:5]
    assert len(during) > 100, summary
    # The event loop never ran 100 ms without letting /healthz in. In CPU time of the loop's thread: the
    # wall-clock figures above also hold the time a busy machine gave to other processes.
    assert watch["cpu_stall"] < 0.1, summary
