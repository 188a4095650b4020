"""Time in tests: a clock that moves only when told, a watch on how long the event loop goes without a
turn, and a bounded wait for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until(
    condition: Callable[[], object | Awaitable[object]], what: str, seconds: float = 30, every: float = 0.05
) -> None:
    """Return once `condition()` (a value, or an awaitable of one) is true, asking every `every` seconds;
    fail after about `seconds`."""
    for _ in range(round(seconds / every)):
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class LoopWatch:
    """How long the event loop it runs on went without a turn, in CPU time of the loop's thread.

    Wall time between ticks also counts time the OS gave to other processes (a busy CI machine); the
    thread's CPU time counts only work done on the loop: a long `cpu_stall` means code ran that long
    without yielding. CPython's garbage collector runs in whichever thread allocates, for as long as the
    whole process's heap takes (in a test process, the whole test run's heap): its pauses are kept apart
    (`gc_pause`, and `cpu_stall_with_gc` for the stretch with them). Tests assert on `cpu_stall`."""

    interval: float = 0.01
    cpu_stall: float = 0.0
    cpu_stall_with_gc: float = 0.0
    gc_pause: float = 0.0
    wall_stall: float = 0.0
    ticks: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _thread: int | None = field(default=None, repr=False)
    _gc_started: float = field(default=0.0, repr=False)
    _gc_total: float = field(default=0.0, repr=False)

    def _collecting(self, phase: str, info: dict[str, int]) -> None:
        if threading.get_ident() != self._thread:
            return
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            pause = time.thread_time() - self._gc_started
            self._gc_total += pause
            self.gc_pause = max(self.gc_pause, pause)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wall, cpu, collected = loop.time(), time.thread_time(), self._gc_total
        while True:
            await asyncio.sleep(self.interval)
            now_wall, now_cpu, now_collected = loop.time(), time.thread_time(), self._gc_total
            self.wall_stall = max(self.wall_stall, now_wall - wall - self.interval)
            self.cpu_stall_with_gc = max(self.cpu_stall_with_gc, now_cpu - cpu)
            self.cpu_stall = max(self.cpu_stall, now_cpu - cpu - (now_collected - collected))
            wall, cpu, collected = now_wall, now_cpu, now_collected
            self.ticks += 1

    def start(self) -> LoopWatch:
        self._thread = threading.get_ident()
        gc.callbacks.append(self._collecting)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        gc.callbacks.remove(self._collecting)
