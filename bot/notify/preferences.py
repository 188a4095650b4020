"""What a person asked of the proactive notices, kept as settings: to hear no more (`mute`), or to be told
once their causes are fixed (`watch`). The helpdesk records them from the chat; the sweep reads them.

    await set_muted(store, user, since=now)
    if user.lower() in await muted_users(store): ...   # everyone's at once: one read, not one a person
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.store.base import Store

__all__ = ["Watch", "clear_watch", "muted_users", "set_muted", "set_watch", "watches"]

_MUTE, _WATCH = "mute", "watch"


def _mute_key(user: str) -> str:
    return f"{_MUTE}:{user.lower()}"


def _watch_key(user: str) -> str:
    return f"{_WATCH}:{user.lower()}"


@dataclass(frozen=True)
class Watch:
    """Tell the person once none of `causes` fails for them any more. `since`: when they asked."""

    causes: tuple[str, ...]
    since: str


async def set_muted(store: Store, user: str, *, since: str) -> None:
    await store.set_setting(_mute_key(user), {"since": since})


async def muted_users(store: Store) -> set[str]:
    """Everyone who asked to hear no more (lowercased Entra ids)."""
    return {key.partition(":")[2] for key, _ in await store.list_settings(_MUTE)}


async def set_watch(store: Store, user: str, causes: Sequence[str], *, since: str) -> None:
    await store.set_setting(_watch_key(user), {"causes": list(causes), "since": since})


async def watches(store: Store) -> dict[str, Watch]:
    """Everyone waiting to hear that their causes are fixed, by lowercased Entra id."""
    return {key.partition(":")[2]: _watch(value) for key, value in await store.list_settings(_WATCH)}


def _watch(value: dict[str, object]) -> Watch:
    causes = value.get("causes")
    return Watch(
        causes=tuple(str(c) for c in causes) if isinstance(causes, list) else (),
        since=str(value.get("since", "")),
    )


async def clear_watch(store: Store, user: str) -> None:
    await store.delete_setting(_watch_key(user))
