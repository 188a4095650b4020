"""Token buckets for Teams' documented send limits (domain.md section 6)."""

from __future__ import annotations

import asyncio
import time

__all__ = ["SendLimiter", "TokenBucket"]


class TokenBucket:
    """`rate` tokens per second, up to `burst` saved; `take()` waits for one."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
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

    def __init__(self, per_tenant: float = 50.0, per_conversation: float = 7.0) -> None:
        # Evenly paced a little under the limit: Teams counts any one-second window, so a full burst
        # on top of a full second's refill would draw 429s.
        self._ceiling = per_tenant * 0.96
        self._tenant = TokenBucket(self._ceiling, 1.0)
        self._slowed_at = 0.0
        self._per_conversation = per_conversation
        self._conversations: dict[str, tuple[TokenBucket, ...]] = {}

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
        buckets = self._conversations.get(conversation_id)
        if buckets is None:
            buckets = (
                TokenBucket(self._per_conversation * 0.96, 1.0),
                TokenBucket(4.0, 8.0),
                TokenBucket(2.0, 60.0),
                TokenBucket(0.5, 1800.0),
            )
            self._conversations[conversation_id] = buckets
        for bucket in buckets:
            await bucket.take()
        await self._tenant.take()
