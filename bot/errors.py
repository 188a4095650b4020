"""The one error root of Sync Doctor.

::

    SyncDoctorError
    ├── InputError               what someone typed can't be used (CLI exit 2)
    │   ├── InvalidIdError       not an id of GUID shape
    │   └── AmbiguousRecordError words match several records: ask which one
    ├── FixtureError             a sandbox fixture file is malformed (names the file and the problem)
    ├── ConfigError              a setting is missing or malformed (names the setting)
    ├── StoreError               the store (STORE_URL) can't be opened, read or written (names it and why)
    └── BackendError             Dataverse, Graph or Entra did not give an answer (CLI exit 3)
        ├── BackendUnavailable   timeouts, 5xx, refused connections, or the time budget ran out
        ├── Throttled            429 for longer than the time budget allows (`retry_after`, `retry_at`)
        └── BackendRefused       a 4xx answer: no permission, bad token, unsupported query
            ├── PermissionDenied a 403 to a write: the caller lacks a privilege (`detail`: the service's words)
            └── AlreadyExists    a create whose id is taken (412, Dataverse's 0x80040237): done before

Catch `BackendError` where a remote failure can be turned into an honest "could not check";
catch `InputError` where the person can be asked again. Messages are written for admins: they say what
was tried and never include tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "AlreadyExists",
    "AmbiguousRecordError",
    "BackendError",
    "BackendRefused",
    "BackendUnavailable",
    "Candidate",
    "ConfigError",
    "FixtureError",
    "InputError",
    "InvalidIdError",
    "PermissionDenied",
    "StoreError",
    "SyncDoctorError",
    "Throttled",
]


class SyncDoctorError(Exception):
    """Root of every error Sync Doctor raises on purpose."""


class InputError(SyncDoctorError):
    """Input from a person (CLI argument, chat text, card data) that can't be used."""


class InvalidIdError(InputError):
    """A value that should be an id (GUID shape) is not one."""


@dataclass(frozen=True)
class Candidate:
    """One record that matched the words someone gave."""

    id: str
    subject: str
    start: str | None


class AmbiguousRecordError(InputError):
    """Words matched more than one record; `candidates` lists them so the person can choose."""

    def __init__(self, words: str, candidates: Sequence[Candidate]) -> None:
        self.words = words
        self.candidates = tuple(candidates)
        super().__init__(f"{len(self.candidates)} records match {words!r}; name one by its id")


class FixtureError(SyncDoctorError):
    """A sandbox fixture file can't be loaded."""


class ConfigError(SyncDoctorError):
    """A required setting is missing or malformed."""


class StoreError(SyncDoctorError):
    """The store can't be used: a corrupt, locked, read-only or unreachable database or storage account.

    A diagnosis needs no store and still answers; what needs one (tickets, notices) says it couldn't keep it.
    """


class BackendError(SyncDoctorError):
    """A remote service (Dataverse, Graph, Entra) did not answer usefully.

    Attributes:
        service: which service ("Dataverse", "Graph", "Entra").
        attempts: how many requests were tried.
    """

    def __init__(self, service: str, message: str, *, attempts: int = 1) -> None:
        self.service = service
        self.attempts = attempts
        super().__init__(f"{service}: {message}")


class BackendUnavailable(BackendError):
    """Timeouts, 5xx answers or refused connections until the time budget ran out."""


class Throttled(BackendError):
    """The service kept answering 429 beyond the time budget, or asked earlier (`Retry-After`) not to be
    called again yet, so no request was sent (`attempts` is then 0).

    Attributes:
        retry_after: seconds until the service may be asked again, when it said (None: it didn't).
        retry_at: the same as an aware UTC date-time, fixed when the error was raised: "try again at".
    """

    def __init__(self, service: str, message: str, *, attempts: int = 1, retry_after: float | None = None):
        self.retry_after = retry_after
        self.retry_at = (
            datetime.now(UTC) + timedelta(seconds=retry_after) if retry_after is not None else None
        )
        super().__init__(service, message, attempts=attempts)


class BackendRefused(BackendError):
    """A 4xx answer other than 429: the request itself was refused.

    Attributes:
        status: the HTTP status.
        code: the service's error code (e.g. Dataverse's "0x80040217"), when it gave one.
        detail: the service's own message, as it gave it (None: it gave none).
    """

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int,
        code: str | None = None,
        attempts: int = 1,
        detail: str | None = None,
    ):
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(service, message, attempts=attempts)


class PermissionDenied(BackendRefused):
    """A write the service refused with 403: the caller (who the request was made as) lacks a privilege.
    `detail` is the service's own words, e.g. Dataverse's "Principal user (Id=...) is missing
    prvWriteMailbox privilege ...": worth showing to whoever asked, as it names what is missing."""


class AlreadyExists(BackendRefused):
    """A create whose id is taken (Dataverse: 412, "0x80040237", "Cannot insert duplicate key"). With a
    deterministic id, the row was made before: by an earlier press of the same fix, or by a retry of this
    very request after its answer was lost."""
