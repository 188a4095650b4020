"""What a person asked of the proactive notices, kept as settings: to hear no more (`mute`), or to be told
once their causes are fixed (`watch`). The helpdesk records them from the chat; the sweep reads them.

    await set_muted(store, user, since=now)
    if await is_muted(store, user): ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.store.base import Store

__all__ = ["Watch", "clear_watch", "get_watch", "is_muted", "set_muted", "set_watch"]


def _mute_key(user: str) -> str:
    return f"mute:{user.lower()}"


def _watch_key(user: str) -> str:
    return f"watch:{user.lower()}"


@dataclass(frozen=True)
class Watch:
    """Tell the person once none of `causes` fails for them any more. `since`: when they asked."""

    causes: tuple[str, ...]
    since: str


async def set_muted(store: Store, user: str, *, since: str) -> None:
    await store.set_setting(_mute_key(user), {"since": since})


async def is_muted(store: Store, user: str) -> bool:
    return await store.get_setting(_mute_key(user)) is not None


async def set_watch(store: Store, user: str, causes: Sequence[str], *, since: str) -> None:
    await store.set_setting(_watch_key(user), {"causes": list(causes), "since": since})


async def get_watch(store: Store, user: str) -> Watch | None:
    value = await store.get_setting(_watch_key(user))
    if value is None:
        return None
    return Watch(causes=tuple(value.get("causes") or ()), since=str(value.get("since", "")))


async def clear_watch(store: Store, user: str) -> None:
    await store.delete_setting(_watch_key(user))
