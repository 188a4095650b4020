"""One delivery leader per store: the processes that share an outbox send as one paced sender.

Teams' 50 messages a second are the app's in a tenant, shared by every process that sends. Processes that
each pace themselves for the whole limit collide (429s, then backoffs of a second or more per message);
processes that split it blindly leave it unused when one of them is starved of CPU. So only one process
sends at a time: the one holding a short lease in the store (`LEASE`), renewed while it delivers. The
others (followers) queue work and look for the lease now and then; when the leader dies, its lease ends
within `seconds` and the next look takes it over.

The leadership is about pace, not about exactly-once: each entry's own claim (its outbox lease) keeps two
processes from sending it twice, also in the moment two processes both believe they lead (a leader starved
past its lease, a clock skewed between hosts). That moment costs a few 429s at worst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from bot.store.base import Store

__all__ = ["LEASE", "Leadership", "leader_seconds"]

log = logging.getLogger(__name__)

LEASE = "outbox-sender"
RENEW_SHARE = 1 / 3  # renewed once this share of the lease has passed: two renewals may fail in a row
SKEW_SHARE = 0.1  # of the lease: kept back for clocks that differ between hosts (the store's `until`)


def leader_seconds(outbox_lease_seconds: float) -> float:
    """The leader's lease for an outbox lease: a sixth of it (5 s for the default 30 s), 2 to 10 s.

    Short, so a dead leader's place is taken within a few seconds; long enough that a leader kept from
    the CPU for a moment still renews in time (it tries every third of it)."""
    return min(10.0, max(2.0, outbox_lease_seconds / 6))


class Leadership:
    """Whether this process is the outbox's delivery leader; `hold()` takes or renews the lease.

    leadership = Leadership(store, seconds=5)
    if await leadership.hold():   # the leader: send (hold() again before each send)
        ...
    else:                         # a follower: look again in `leadership.poll_seconds`
        await leadership.wait_turn()
    """

    def __init__(
        self,
        store: Store,
        *,
        seconds: float = 5.0,
        owner: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.seconds = seconds
        # Host and pid first: whoever reads the lease (an operator, the topology benchmark) sees who leads.
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._sleep = sleep
        self._valid_until = float("-inf")  # on this process's clock, the skew margin taken off
        self._renew_at = float("-inf")
        self._looked = float("-inf")  # when the last look at the store ended
        self._lock = asyncio.Lock()
        self._renewal: asyncio.Task[None] | None = None

    @property
    def poll_seconds(self) -> float:
        """How often a follower looks for the lease: four looks per lease, so a dead leader's place is
        taken at most a quarter of a lease after its lease ends."""
        return self.seconds / 4

    @property
    def leading(self) -> bool:
        """This process held the lease at its last look, and it has not ended since (no I/O)."""
        return self._clock() < self._valid_until

    async def hold(self) -> bool:
        """True while this process leads: takes the lease when it is free, and renews it in the background
        once a third of it has passed (the sends that asked go on meanwhile)."""
        now = self._clock()
        if now < self._valid_until:
            if now >= self._renew_at and (self._renewal is None or self._renewal.done()):
                self._renewal = asyncio.create_task(self._take())
            return True
        await self._take()  # not leading, or the renewals failed: ask the store now
        return self.leading

    async def wait_turn(self) -> None:
        """A follower's pause before its next look for the lease."""
        await self._sleep(self.poll_seconds)

    async def resign(self) -> None:
        """Give the lease up (a process that stops delivering), so another takes over at once."""
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewal
        if self._valid_until == float("-inf"):
            return  # never led: nothing to give up
        self._valid_until = float("-inf")
        try:
            await self.store.release_lease(LEASE, self.owner)
        except Exception:  # it ends on its own within `seconds`
            log.warning("could not release the outbox's delivery lease; it ends within %.0f s", self.seconds)

    async def _take(self) -> None:
        called = self._clock()
        async with self._lock:
            if self._looked > called:
                return  # a look that started after this call finished meanwhile: its answer stands
            now = self._clock()
            was_leading = now < self._valid_until
            asked = now  # the lease runs from before the request: its end is never overestimated
            try:
                taken = await self.store.acquire_lease(LEASE, self.owner, self.seconds)
            except Exception:  # the store is down: what we held stays ours until it ends
                log.warning("could not renew the outbox's delivery lease", exc_info=True)
                return
            finally:
                self._looked = self._clock()
            if taken:
                self._valid_until = asked + self.seconds * (1 - SKEW_SHARE)
                self._renew_at = asked + self.seconds * RENEW_SHARE
                if not was_leading:
                    log.info("this process leads outbox delivery now (%s)", self.owner)
            else:
                self._valid_until = float("-inf")
                if was_leading:
                    log.warning("another process took over outbox delivery; this one stops sending")
