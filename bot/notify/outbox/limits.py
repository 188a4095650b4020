"""Token buckets for Teams' documented send limits (domain.md section 6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["SendLimiter", "TokenBucket"]


class TokenBucket:
    """`rate` tokens per second, up to `burst` saved; `take()` waits for one."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()
        self._lock = asyncio.Lock()

    @property
    def refill_seconds(self) -> float:
        """How long an empty bucket takes to fill up again: idle that long, it is as good as new."""
        return self.burst / self.rate

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class SendLimiter:
    """Per app per tenant 50 messages a second; per conversation 7 in 1 s, 8 in 2 s, 60 in 30 s and
    1,800 in an hour (Teams' documented limits).

    The tenant's limit is shared by every process that sends for the app, and none of them knows how
    many others there are: each slows down when Teams answers 429 and speeds up again with every
    message accepted (additive increase, multiplicative decrease), so together they settle near the limit.
    """

    SLOWER = 0.7  # the pace after a 429, as a share of the pace before
    FASTER = 0.2  # messages per second added with each accepted message, up to the limit

    def __init__(
        self,
        per_tenant: float = 50.0,
        per_conversation: float = 7.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Evenly paced a little under the limit: Teams counts any one-second window, so a full burst
        # on top of a full second's refill would draw 429s. Half a token to spare: a sender woken late
        # (the event loop's timer, a busy CPU) catches up instead of losing the time (with a burst of 1,
        # 48/s paced came out at 46/s); a window still holds at most 48 + 1.5 < 50.
        self._clock = clock
        self._ceiling = per_tenant * 0.96
        self._tenant = TokenBucket(self._ceiling, 1.5, clock=clock)
        self._slowed_at = 0.0
        self._per_conversation = per_conversation
        # Each conversation's windows, with when they were last used; dropped once idle long enough to be
        # full again (a fresh set is the same then), so a sweep of many people doesn't keep them all.
        self._conversations: dict[str, tuple[float, tuple[TokenBucket, ...]]] = {}
        self._pruned_at = clock()
        self._idle = max(b.refill_seconds for b in self._new_windows())  # the slowest window's: an hour

    @property
    def conversations(self) -> int:
        """Conversations whose send windows are kept (the rest are as good as new)."""
        return len(self._conversations)

    @property
    def pace(self) -> float:
        """Messages per second this process currently allows itself in the tenant."""
        return self._tenant.rate

    def throttled(self) -> None:
        """Teams answered 429: someone (maybe another instance) is sending too. Slow down, every 250 ms
        at most: the 429s of one burst say the same thing."""
        now = time.monotonic()
        if now - self._slowed_at >= 0.25:
            self._slowed_at = now
            self._tenant.rate = max(1.0, self._tenant.rate * self.SLOWER)

    def accepted(self) -> None:
        self._tenant.rate = min(self._ceiling, self._tenant.rate + self.FASTER)

    async def wait(self, conversation_id: str) -> None:
        now = self._clock()
        self._prune(now)
        kept = self._conversations.get(conversation_id)
        buckets = kept[1] if kept else self._new_windows()
        self._conversations[conversation_id] = (now, buckets)
        for bucket in buckets:
            await bucket.take()
        await self._tenant.take()
        self._conversations[conversation_id] = (self._clock(), buckets)

    def _new_windows(self) -> tuple[TokenBucket, ...]:
        clock = self._clock
        return (
            TokenBucket(self._per_conversation * 0.96, 1.0, clock=clock),
            TokenBucket(4.0, 8.0, clock=clock),
            TokenBucket(2.0, 60.0, clock=clock),
            TokenBucket(0.5, 1800.0, clock=clock),
        )

    def _prune(self, now: float) -> None:
        if now - self._pruned_at < self._idle / 60:  # look once a minute at most
            return
        self._pruned_at = now
        for conversation, (used, _) in list(self._conversations.items()):
            if now - used >= self._idle:
                del self._conversations[conversation]
