"""App tokens from Microsoft Entra ID through MSAL, for `bot.clients.auth`: client credentials (an app
registration's secret) or a user-assigned managed identity (MSAL's `ManagedIdentityClient`, which asks the
platform's identity endpoint: App Service's `IDENTITY_ENDPOINT`, else the VM's IMDS).

MSAL is synchronous, so its calls run on a few daemon threads of the provider's own; callers wanting
the same token at once share one acquisition, and each caller waits only until its own deadline
(`bot.clients.http.time_left()`). An acquisition is retried like a Dataverse call (5xx, timeouts,
refused connections, with jittered backoff, never past the deadline), remembers a 429's `Retry-After`
like `send` does, and fails only with the errors of `bot.errors`: `BackendUnavailable("Entra", ...)`,
`Throttled` or `BackendRefused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msal
import requests
from msal.exceptions import MsalServiceError

from bot.clients.http import (
    THROTTLES,
    RetryPolicy,
    backoff,
    ends_within,
    gave_up,
    throttle_key,
    wait_out_throttle,
)
from bot.errors import BackendError, BackendRefused, BackendUnavailable, Throttled

__all__ = ["SERVICE", "MsalTokenProvider", "resource_of"]

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE = "Entra"
# Hosts MSAL knows from Microsoft's instance discovery; any other authority (a sovereign cloud's own,
# a test server) is used as given.
_PUBLIC_AUTHORITY_HOSTS = frozenset({"login.microsoftonline.com"})
_MSAL_THREADS = (
    4  # one acquisition at a time per (scope, refresh): Dataverse and Graph, each possibly refreshing
)
_DEFAULT_ENTRA_RETRY_AFTER = 5.0  # what MSAL itself waits after a 429 without Retry-After


class _Transient(BackendUnavailable):
    """One token attempt failed in a way worth retrying (5xx, timeout, no connection)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(SERVICE, problem)


class _DaemonThreads:
    """A few daemon threads for MSAL's blocking calls, apart from asyncio's default pool.

    Apart, so that botbuilder's sends filling the default pool can't hold up a token, nor a stuck token
    endpoint hold up anything else; daemon threads, so that a call still waiting for its socket timeout
    never keeps a finished process (`asyncio.run`, interpreter exit) from ending.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        self._max = max_workers
        self._name = name
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the token provider is closed")
            self._work.put((future, fn))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return future

    def shutdown(self) -> None:
        """Cancel what hasn't started and let the threads end (a call under way ends at its timeout)."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._work.put(None)
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._work.put(None)
                break
            item[0].cancel()

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn()
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn
            self._idle.release()


def _watch(future: Future[T]) -> asyncio.Future[T]:
    """An asyncio future of this loop that settles with `future`; cancelling it leaves `future` alone
    (other callers may be waiting for the same acquisition)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[T] = loop.create_future()

    def settle() -> None:
        if waiter.done():
            return
        if future.cancelled():
            waiter.set_exception(_Transient("the token request was cancelled (the provider is closing)"))
            return
        exc = future.exception()
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(future.result())

    def done(_: Future[T]) -> None:
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits for this any more
            loop.call_soon_threadsafe(settle)

    future.add_done_callback(done)
    return waiter


class _TimedSession(requests.Session):
    """MSAL's HTTP client: a finite timeout on every request (requests waits forever by default, and
    MSAL ignores its own `timeout=` when given a client), and what the last answer was, per thread, so
    that a refusal can say which HTTP status it came with."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self._seen = threading.local()
        self.last: tuple[str, int, str | None] | None = None  # the last answer in any thread

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        self._seen.value = None
        response = super().request(method, url, *args, **kwargs)
        path = urlsplit(url.decode() if isinstance(url, bytes) else url).path
        verb = method.decode() if isinstance(method, bytes) else method
        self._seen.value = self.last = (
            f"{verb.upper()} {path}",
            response.status_code,
            response.headers.get("Retry-After"),
        )
        return response

    def forget(self) -> None:
        self._seen.value = None

    def seen(self) -> tuple[str, int, str | None] | None:
        """(request line, status, Retry-After) of this thread's last answer since `forget()`."""
        value: tuple[str, int, str | None] | None = getattr(self._seen, "value", None)
        return value


class MsalTokenProvider:
    """App tokens from Microsoft Entra ID through MSAL, cached by MSAL: with an app registration's client
    secret, or (`MsalTokenProvider.managed_identity`) as a user-assigned managed identity.

    MSAL is synchronous (requests, which trusts `REQUESTS_CA_BUNDLE`), so its calls run on a few daemon
    threads of the provider's own, each request with `policy.attempt_timeout`. Callers wait for them only
    until their own deadline; callers wanting the same token at once share one acquisition.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        authority_host: str,
        policy: RetryPolicy | None = None,
        _managed: bool = False,
    ) -> None:
        host = authority_host.rstrip("/")
        self._authority = f"{host}/{tenant_id}"
        self._instance_discovery = urlsplit(host).hostname in _PUBLIC_AUTHORITY_HOSTS
        self._client_id = client_id
        self._secret = client_secret
        self._managed = _managed
        self._policy = policy or RetryPolicy()
        self._throttle_key = throttle_key(SERVICE, "managed-identity" if _managed else host)
        self._cache = msal.TokenCache()
        self._app: Any = None
        self._app_lock = threading.Lock()
        # ours, so that closing the provider closes its connections, and so that no call waits forever
        self._session = _TimedSession(timeout=self._policy.attempt_timeout)
        self._threads = _DaemonThreads(_MSAL_THREADS, name="msal")
        self._inflight: dict[tuple[str, bool], Future[str]] = {}
        self._inflight_lock = threading.Lock()

    @classmethod
    def managed_identity(cls, client_id: str, *, policy: RetryPolicy | None = None) -> MsalTokenProvider:
        """Tokens for the user-assigned managed identity `client_id`, from the platform's identity endpoint
        (on App Service `IDENTITY_ENDPOINT` with `IDENTITY_HEADER`; on a VM, IMDS). No secret."""
        return cls(
            tenant_id="",
            client_id=client_id,
            client_secret="",
            authority_host="",
            policy=policy,
            _managed=True,
        )

    @property
    def identity(self) -> str:
        """Which identity asks, for people: `managed identity <client id>` or `app <client id>`."""
        return f"{'managed identity' if self._managed else 'app'} {self._client_id}"

    async def token(self, scope: str, *, force_refresh: bool = False) -> str:
        """A token for `scope`, within the current deadline (or the policy's budget).

        Raises:
            BackendUnavailable: Entra answered 5xx, timed out or couldn't be reached until the time ran out.
            Throttled: Entra asked (429) not to be asked again before the time runs out.
            BackendRefused: Entra refused (a wrong secret, an unknown tenant or client, a bad authority).
        """
        started = time.monotonic()
        ends = ends_within(self._policy, started)
        await wait_out_throttle(SERVICE, self._throttle_key, ends)
        last_problem = "no attempt was made: the time budget was already spent"
        attempt = 0
        throttled = False
        while attempt < self._policy.max_attempts:
            remaining = ends - time.monotonic()
            if remaining <= 0.05:
                break
            attempt += 1
            waiter = _watch(self._shared(scope, force_refresh))
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            finally:
                if not waiter.done():
                    waiter.cancel()
            # Settled as the wait ran out counts as an answer: its error must be read, not left unretrieved.
            if waiter.cancelled():
                last_problem = f"no answer from the token endpoint within {remaining:.1f} s"
                break
            throttled = False
            try:
                return waiter.result()
            except _Transient as exc:
                last_problem = exc.problem
                wait = backoff(self._policy, attempt)
            except Throttled as exc:
                throttled, last_problem = True, str(exc).removeprefix(f"{SERVICE}: ")
                wait = exc.retry_after or backoff(self._policy, attempt)
                if time.monotonic() + wait >= ends:
                    exc.attempts = attempt
                    raise
            except BackendError as exc:
                exc.attempts = attempt
                raise
            log.info("Entra attempt %d failed: %s", attempt, last_problem)
            wait = min(wait, max(0.0, ends - time.monotonic()))
            if attempt < self._policy.max_attempts and wait > 0:
                await asyncio.sleep(wait)
        raise gave_up(SERVICE, last_problem, attempt, started, throttled=throttled, key=self._throttle_key)

    async def aclose(self) -> None:
        self._threads.shutdown()
        self._session.close()

    def _shared(self, scope: str, force_refresh: bool) -> Future[str]:
        """The acquisition under way for (scope, force_refresh), or a new one."""
        key = (scope, force_refresh)
        with self._inflight_lock:
            future = self._inflight.get(key)
            if future is not None:
                return future
            future = self._threads.submit(functools.partial(self._acquire, scope, force_refresh))
            self._inflight[key] = future
        future.add_done_callback(functools.partial(self._finished, key))
        return future

    def _finished(self, key: tuple[str, bool], future: Future[str]) -> None:
        with self._inflight_lock:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    def _application(self) -> Any:
        with self._app_lock:
            if self._app is None:
                if self._managed:
                    self._app = msal.ManagedIdentityClient(
                        msal.UserAssignedManagedIdentity(client_id=self._client_id),
                        http_client=self._session,
                        token_cache=self._cache,
                    )
                    return self._app
                # MSAL discovers the tenant's endpoints in its constructor (a blocking request): so here,
                # in a worker thread, never on the event loop.
                self._app = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=self._secret,
                    authority=self._authority,
                    instance_discovery=self._instance_discovery,
                    http_client=self._session,
                    token_cache=self._cache,
                )
            return self._app

    def _forget_tokens(self) -> None:
        """Drop the cached access tokens, so the next acquisition asks the identity provider."""
        for entry in self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN):
            self._cache.remove_at(entry)

    def _acquire(self, scope: str, force_refresh: bool) -> str:
        """One acquisition, in a worker thread: a token, or one of our errors."""
        self._session.forget()
        try:
            app = self._application()
            if force_refresh:
                self._forget_tokens()
            if self._managed:
                result = app.acquire_token_for_client(resource=resource_of(scope))
            else:
                result = app.acquire_token_for_client(scopes=[scope])
        except requests.Timeout as exc:
            raise _Transient(
                f"the token endpoint did not answer within {self._session.timeout:.1f} s"
            ) from exc
        except (requests.RequestException, OSError) as exc:
            where = "the managed identity endpoint" if self._managed else "token endpoint"
            raise _Transient(f"{where} unreachable ({type(exc).__name__})") from exc
        except MsalServiceError as exc:  # MSAL's raise_for_status: a 5xx from the token endpoint or discovery
            raise _Transient(self._answered(str(exc))) from exc
        except json.JSONDecodeError as exc:  # an answer that isn't JSON: a proxy's error page, say
            seen = self._session.seen()
            if seen is not None and seen[1] >= 500:
                raise _Transient(f"HTTP {seen[1]} for {seen[0]}") from exc
            raise BackendRefused(
                SERVICE, "the token endpoint answered something that isn't JSON", status=502
            ) from exc
        except ValueError as exc:  # MSAL raises ValueError for a bad authority / discovery failure
            self._raise_if_throttled()
            raise BackendRefused(SERVICE, f"authority refused: {exc}", status=400) from exc
        except RuntimeError as exc:  # MSAL's fallback when discovery answers neither 2xx nor 4xx
            raise _Transient(self._answered(str(exc).splitlines()[0] if str(exc) else "")) from exc
        return self._token_from(result, scope)

    def _token_from(self, result: Any, scope: str) -> str:
        """The token in MSAL's answer, or why there is none as one of our errors."""
        if isinstance(result, dict) and "access_token" in result:
            log.debug("token for %s from %s", scope, result.get("token_source", "identity provider"))
            return str(result["access_token"])
        error = result.get("error", "unknown_error") if isinstance(result, dict) else "unknown_error"
        description = result.get("error_description", "") if isinstance(result, dict) else ""
        first_line = str(description).splitlines()[0] if description else ""
        self._raise_if_throttled()
        seen = self._session.seen()
        if self._managed and (seen is None or seen[1] >= 500):
            # MSAL reports a managed identity endpoint's 5xx as an error answer, and for a few seconds
            # after one answers from its memory of it without asking (then nothing was seen)
            last = seen or self._session.last
            if last is not None and last[1] >= 500:
                raise _Transient(self._answered(first_line))
        raise BackendRefused(
            SERVICE,
            f"no token for {scope}: {error} {first_line}".strip(),
            status=seen[1] if seen is not None and 400 <= seen[1] < 500 else 401,
            code=str(error),
        )

    def _raise_if_throttled(self) -> None:
        """A 429 was the last answer: remember its Retry-After and raise Throttled."""
        seen = self._session.seen()
        if seen is None or seen[1] != 429:
            return
        wait = _seconds(seen[2]) or _DEFAULT_ENTRA_RETRY_AFTER
        THROTTLES.hold(self._throttle_key, wait)
        raise Throttled(
            SERVICE, f"throttled (429) for {seen[0]}, asked to retry after {wait:.0f} s", retry_after=wait
        )

    def _answered(self, fallback: str) -> str:
        seen = self._session.seen()
        if seen is not None:
            return f"HTTP {seen[1]} for {seen[0]}"
        last = self._session.last  # MSAL answered from its memory of a recent failure, without asking
        if last is not None and last[1] >= 500:
            return f"HTTP {last[1]} for {last[0]} (MSAL waits a few seconds before asking again)"
        return f"token endpoint failing: {fallback}"


def resource_of(scope: str) -> str:
    """The resource a managed identity asks a token for: the scope without its `/.default`."""
    return scope.removesuffix("/.default")


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
