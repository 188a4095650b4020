"""Teams' send windows: kept per conversation while they matter, forgotten once they are full again."""

from __future__ import annotations

from bot.notify.outbox.limits import SendLimiter


class Clock:
    """A clock that moves a millisecond each time it is read (so buckets refill) and jumps when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


async def test_idle_conversations_are_forgotten_once_their_windows_are_full_again() -> None:
    clock = Clock()
    limiter = SendLimiter(per_tenant=10**6, clock=clock)
    for n in range(2000):
        await limiter.wait(f"a:chat-{n}")
    assert limiter.conversations == 2000
    clock.now += 1800  # half an hour: the hourly window still counts their messages
    await limiter.wait("a:chat-0")
    assert limiter.conversations == 2000
    clock.now += 1900  # an hour since the others' last message: a fresh window is the same as theirs
    await limiter.wait("a:chat-new")
    assert limiter.conversations == 2  # chat-0 (used half an hour ago) and the new one
