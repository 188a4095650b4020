"""Sending one request with retries inside a time budget, shared by the Dataverse and Graph clients.

Retries 429 (honouring `Retry-After`), 502/503/504/500 and timeouts with jittered exponential backoff,
but never past the deadline: the tighter of the policy's own budget and the one set with `deadline()`
around a whole diagnosis, so a Teams turn always gets its answer inside 15 seconds. The token a request
needs is fetched inside the same deadline (`time_left()` tells the token provider how long it has).

A `Retry-After` is remembered process-wide, per service and host (`THROTTLES`): until it has passed,
`send` doesn't ask again; a request whose budget can't outlast it raises `Throttled` at once, without
a request, carrying how long is left (`retry_after`, seconds) and when that is (`retry_at`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
from opentelemetry.trace import SpanKind

from bot.errors import BackendRefused, BackendUnavailable, Throttled
from bot.observability import safe_path, tracer

__all__ = [
    "THROTTLES",
    "RetryPolicy",
    "ThrottleMemory",
    "backoff",
    "deadline",
    "ends_within",
    "error_message",
    "gave_up",
    "send",
    "throttle_key",
    "time_left",
    "wait_out_throttle",
]

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_MAX_HOLD = 3600.0  # a Retry-After beyond an hour is taken as an hour: a bad header can't block for days
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("sync_doctor_deadline", default=None)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request.

    Attributes:
        budget: seconds for all attempts of one request together.
        attempt_timeout: seconds for one attempt.
        max_attempts: attempts at most.
        base_delay: first backoff delay in seconds; doubles each retry, with full jitter.
        max_delay: cap for one backoff delay.
    """

    budget: float = 10.0
    attempt_timeout: float = 5.0
    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 2.0


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Limit every request sent inside this block (and tasks it starts) to end within `seconds`."""
    ends = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(ends if current is None else min(current, ends))
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float | None:
    """Seconds left before the current `deadline()` (or the request being sent) must end; None: no limit."""
    ends = _deadline.get()
    return None if ends is None else ends - time.monotonic()


def ends_within(policy: RetryPolicy, started: float | None = None) -> float:
    """The `time.monotonic()` by which work under `policy` must end: its budget from `started` (default
    now), or the current deadline when that is sooner."""
    ends = (time.monotonic() if started is None else started) + policy.budget
    outer = _deadline.get()
    return ends if outer is None else min(ends, outer)


class ThrottleMemory:
    """Until when each service asked not to be asked again (`Retry-After` on a 429), process-wide.

    Keys are `throttle_key(service, url)`: one per service and host, since Dataverse's service protection
    limits and Graph's throttling apply to the app on that host, not to one turn. `clock` is the
    monotonic clock the holds are measured with; tests give their own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()  # the token provider's threads remember Entra's 429s too

    def hold(self, key: str, seconds: float) -> None:
        """Ask nothing of `key` for `seconds` (at most an hour); a longer hold already kept stays."""
        until = self.clock() + min(max(0.0, seconds), _MAX_HOLD)
        with self._lock:
            if until > self._until.get(key, float("-inf")):
                self._until[key] = until

    def remaining(self, key: str) -> float | None:
        """Seconds `key` is still held for, None when it is not."""
        with self._lock:
            until = self._until.get(key)
            if until is None:
                return None
            left = until - self.clock()
            if left <= 0:
                del self._until[key]
                return None
            return left

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


THROTTLES = ThrottleMemory()


def throttle_key(service: str, url: httpx.URL | str) -> str:
    """The memory key of a service on the host of `url`: e.g. "Dataverse https://contoso.crm.dynamics.com"."""
    url = httpx.URL(url) if isinstance(url, str) else url
    return f"{service} {url.scheme}://{url.netloc.decode()}"


async def wait_out_throttle(service: str, key: str, ends: float) -> None:
    """Wait until `key`'s remembered `Retry-After` has passed, when that is before `ends`.

    Raises:
        Throttled: it lasts beyond `ends`; nothing was sent (`attempts` 0, `retry_after` the rest).
    """
    held = THROTTLES.remaining(key)
    if held is None:
        return
    left = ends - time.monotonic()
    if held >= left:
        raise Throttled(
            service,
            f"throttled (429): asked not to be called again for {held:.0f} s more, beyond the "
            f"{max(0.0, left):.0f} s this answer may take; not sent",
            attempts=0,
            retry_after=held,
        )
    log.info("%s is throttled for %.1f s more: waiting before sending", service, held)
    await asyncio.sleep(held)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_message(response: httpx.Response) -> tuple[str | None, str]:
    """The (code, message) of an OData/Graph error body, or the status line when there is none."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            return (str(code) if code is not None else None, str(message or response.reason_phrase))
    except ValueError:
        pass
    return None, f"HTTP {response.status_code} {response.reason_phrase}"


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    service: str,
    policy: RetryPolicy,
    *,
    idempotent: bool = True,
) -> httpx.Response:
    """Send `request`, retrying what is worth retrying, and return a 2xx response. One span covers all
    attempts.

    `idempotent=False` (a create without its own id): an attempt that may have reached the service (a
    timeout once connected, a dropped connection, a 5xx) is not repeated, since a second one could make
    a second row; only what surely did nothing is retried (429, a refused connection).

    Raises:
        Throttled: 429 answers outlasted the budget.
        BackendUnavailable: timeouts, connection errors or 5xx answers outlasted the budget.
        BackendRefused: any other non-2xx answer (not retried: asking again won't help).
    """
    path = safe_path(request.url.path)
    with tracer.start_as_current_span(
        f"{service} {request.method}",
        kind=SpanKind.CLIENT,
        attributes={  # OpenTelemetry's HTTP client conventions; the URL without its query (it names people)
            "http.request.method": request.method,
            "url.full": f"{request.url.scheme}://{request.url.netloc.decode()}{path}",
            "url.path": path,
            "server.address": request.url.host,
            "server.port": request.url.port or (443 if request.url.scheme == "https" else 80),
        },
    ) as span:
        response = await _send(client, request, service, policy, idempotent)
        span.set_attribute("http.response.status_code", response.status_code)
        return response


async def _send(
    client: httpx.AsyncClient, request: httpx.Request, service: str, policy: RetryPolicy, idempotent: bool
) -> httpx.Response:
    started = time.monotonic()
    ends = ends_within(policy, started)
    key = throttle_key(service, request.url)
    await wait_out_throttle(service, key, ends)
    # The token this request needs (BearerAuth, inside client.send) is fetched within the same deadline.
    token = _deadline.set(ends)
    try:
        return await _attempts(client, request, service, policy, started, ends, key, idempotent)
    finally:
        _deadline.reset(token)


async def _attempts(
    client: httpx.AsyncClient,
    request: httpx.Request,
    service: str,
    policy: RetryPolicy,
    started: float,
    ends: float,
    key: str,
    idempotent: bool = True,
) -> httpx.Response:
    last_problem = "no attempt was made: the time budget was already spent"
    attempt = 0
    throttled = False
    wait: float | None = None
    while attempt < policy.max_attempts:
        remaining = ends - time.monotonic()
        if remaining <= 0.05:
            break
        attempt += 1
        timeout = min(policy.attempt_timeout, remaining)
        request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        wait = None
        throttled = False
        try:
            response = await client.send(request)
        except httpx.TimeoutException as exc:
            last_problem = f"timed out after {timeout:.1f} s"
            _once(idempotent, exc, service, last_problem, attempt, started)
        except httpx.TransportError as exc:
            last_problem = f"could not connect ({type(exc).__name__})"
            _once(idempotent, exc, service, last_problem, attempt, started)
        else:
            log.debug("%s %s %s -> %s", service, request.method, request.url.path, response.status_code)
            if response.is_success:
                return response
            await response.aread()
            if response.status_code == 429:
                throttled = True
                asked = _retry_after(response)
                if asked is not None:
                    THROTTLES.hold(key, asked)  # every later request to this host waits for it too
                wait = asked or backoff(policy, attempt)
                last_problem = f"throttled (429), asked to retry after {wait:.1f} s"
                if time.monotonic() + wait >= ends:
                    raise Throttled(
                        service,
                        f"{last_problem}, beyond the {policy.budget:.0f} s budget ({attempt} attempt(s))",
                        attempts=attempt,
                        retry_after=wait,
                    )
            elif response.status_code in _RETRY_STATUSES:
                code, message = error_message(response)
                last_problem = f"HTTP {response.status_code}: {message}"
                if not idempotent:
                    raise gave_up(
                        service,
                        f"{last_problem} (not repeated: it may have been done)",
                        attempt,
                        started,
                        throttled=False,
                        key=key,
                    )
            else:
                code, message = error_message(response)
                raise BackendRefused(
                    service,
                    f"HTTP {response.status_code} for {request.method} {request.url.path}: {message}",
                    status=response.status_code,
                    code=code,
                    attempts=attempt,
                    detail=message if code is not None else None,
                )
        log.info("%s attempt %d failed: %s", service, attempt, last_problem)
        if wait is None:
            wait = backoff(policy, attempt)
        wait = min(wait, max(0.0, ends - time.monotonic()))
        if attempt < policy.max_attempts and wait > 0:
            await asyncio.sleep(wait)
    raise gave_up(service, last_problem, attempt, started, throttled=throttled, key=key, wait=wait)


def _once(
    idempotent: bool, exc: httpx.TransportError, service: str, problem: str, attempt: int, started: float
) -> None:
    """Raise at once when a request that must not be repeated may have reached the service.

    Raises:
        BackendUnavailable: `idempotent` is False and the failure came after connecting.
    """
    if idempotent or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return  # nothing was sent: asking again is safe
    spent = time.monotonic() - started
    raise BackendUnavailable(
        service,
        f"{problem}; not repeated, as it may have been done: look before trying again "
        f"({attempt} attempt(s) in {spent:.1f} s)",
        attempts=attempt,
    ) from exc


def gave_up(
    service: str,
    last_problem: str,
    attempt: int,
    started: float,
    *,
    throttled: bool,
    key: str,
    wait: float | None = None,
) -> Throttled | BackendUnavailable:
    """The error for a request whose attempts ran out: throttled to the end, or unavailable."""
    spent = time.monotonic() - started
    message = f"{last_problem}; gave up after {attempt} attempt(s) in {spent:.1f} s"
    if throttled:
        return Throttled(service, message, attempts=attempt, retry_after=THROTTLES.remaining(key) or wait)
    return BackendUnavailable(service, message, attempts=attempt)


def backoff(policy: RetryPolicy, attempt: int) -> float:
    """The jittered delay before attempt `attempt + 1`."""
    cap = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    return random.uniform(cap / 2, cap)  # noqa: S311 - jitter, not cryptography
