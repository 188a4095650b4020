"""The outbox's worker: a deliverer for the app's settings, and the loop that keeps it delivering."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from botbuilder.integration.aiohttp import CloudAdapter

from bot.config import Settings
from bot.notify.outbox.connector import Connector, connector_adapter
from bot.notify.outbox.deliverer import Deliverer
from bot.notify.outbox.kinds import NotifyProblem
from bot.notify.outbox.notices import ProblemNotices
from bot.store.base import Store

__all__ = ["deliverer_for", "drain_forever"]

log = logging.getLogger(__name__)


def deliverer_for(settings: Settings, store: Store, adapter: CloudAdapter | None = None) -> Deliverer:
    """The outbox's deliverer for these settings, sending the sweep's notices; `serve`, `sweep` and
    `deliver` all build it so, and register the helpdesk's senders on it (`bot.helpdesk.senders`).

    Args:
        adapter: the app's own adapter (`serve`); otherwise one is made (`connector_adapter`).
    """
    connector = Connector(adapter or connector_adapter(settings), app_id=settings.microsoft_app_id)
    deliverer = Deliverer(store, connector, lease_seconds=settings.outbox_lease_seconds)
    deliverer.register(NotifyProblem, ProblemNotices(store, connector).send)
    return deliverer


async def drain_forever(
    deliverer: Deliverer,
    *,
    every: float = 5.0,
    batch: int = 20,
    rounds: int = 1,
    on_round: Callable[[int], None] | None = None,
) -> None:
    """Keep delivering (`serve`, `deliver`): retries come due, and other instances' leases expire.
    After a round that sent something the next starts at once: a backlog goes at the pace Teams allows.
    With `rounds` > 1, rounds overlap: one claims while another sends, so the claim's round trips to
    the store don't leave the connector idle."""

    async def loop() -> None:
        while True:
            sent = 0
            try:
                sent = await deliverer.drain(limit=batch)
            except Exception:
                log.exception("outbox delivery round failed; trying again")
            if on_round is not None:
                on_round(sent)
            if sent == 0:
                await asyncio.sleep(every)

    await asyncio.gather(*(loop() for _ in range(rounds)))
