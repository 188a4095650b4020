"""The outbox's worker: a deliverer for the app's settings, and the loop that keeps it delivering.

Every process that delivers (`serve`, `sweep`, `deliver`) competes for the one delivery lead of its store
(`leader.py`); the leader sends, the others wait their turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from botbuilder.integration.aiohttp import CloudAdapter

from bot.config import Settings
from bot.notify.outbox.adapter import connector_adapter
from bot.notify.outbox.connector import Connector
from bot.notify.outbox.deliverer import Deliverer
from bot.notify.outbox.kinds import NotifyProblem
from bot.notify.outbox.leader import Leadership, leader_seconds
from bot.notify.outbox.notices import ProblemNotices
from bot.store.base import Store

__all__ = ["LEADER_IDLE", "deliverer_for", "drain_forever"]

log = logging.getLogger(__name__)

# Seconds a leader waits when nothing is due. Only the leader sends, so what other processes queue (a sweep
# beside `serve`, a turn on another instance) waits for its next look: a short wait keeps the first notice
# of a sweep within a second. An idle look is one claim (a SELECT, or one queue receive).
LEADER_IDLE = 0.5


def deliverer_for(settings: Settings, store: Store, adapter: CloudAdapter | None = None) -> Deliverer:
    """The outbox's deliverer for these settings, sending the sweep's notices; `serve`, `sweep` and
    `deliver` all build it so, and register the helpdesk's senders on it (`bot.helpdesk.senders`).

    Args:
        adapter: the app's own adapter (`serve`); otherwise one is made (`connector_adapter`).
    """
    connector = Connector(adapter or connector_adapter(settings), app_id=settings.microsoft_app_id)
    leadership = (
        Leadership(store, seconds=leader_seconds(settings.outbox_lease_seconds))
        if settings.outbox_leader
        else None
    )
    deliverer = Deliverer(
        store, connector, lease_seconds=settings.outbox_lease_seconds, leadership=leadership
    )
    deliverer.register(NotifyProblem, ProblemNotices(store, connector).send)
    return deliverer


async def drain_forever(
    deliverer: Deliverer,
    *,
    every: float = 5.0,
    batch: int = 20,
    rounds: int = 3,
    on_round: Callable[[int], None] | None = None,
) -> None:
    """Keep delivering (`serve`, `deliver`): retries come due, and other instances' leases expire.
    After a round that sent something the next starts at once: a backlog goes at the pace Teams allows.
    Rounds overlap (`rounds`): one claims and records while another sends, so the store's round trips
    don't leave the connector idle (on Azure Storage a round of 20 spends a tenth of a second claiming).
    A leader with nothing due looks again within `LEADER_IDLE` seconds; a follower's `drain()` waits its
    own turn. Cancelled, it gives the lead up so another process takes over at once."""

    async def loop() -> None:
        while True:
            sent = 0
            try:
                sent = await deliverer.drain(limit=batch)
            except Exception:
                log.exception("outbox delivery round failed; trying again")
            if on_round is not None:
                on_round(sent)
            if sent == 0 and _leading(deliverer):
                await asyncio.sleep(min(every, LEADER_IDLE))
            elif sent == 0 and deliverer.leadership is None:
                await asyncio.sleep(every)

    try:
        await asyncio.gather(*(loop() for _ in range(rounds)))
    finally:
        await asyncio.shield(deliverer.resign())


def _leading(deliverer: Deliverer) -> bool:
    return deliverer.leadership is not None and deliverer.leadership.leading
