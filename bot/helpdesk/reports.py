"""The sweep's delivery report, sent to the helpdesk channel once its notices are: the `DeliveryReport`
outbox entry the sweep queued carries what it found; how telling them went is read from the outbox when
the report is sent. A durable outbox entry itself, it survives a crash and is posted once.

"Once its notices are" means nothing of that sweep is being sent any more (each notice was sent, given up,
or waits for a later retry), or the report's `settle_by` passed: then it goes with "still sending N", and
failures among those show in the next report ("given up since the last report") and in `python -m bot
report`. Until then the sender asks the outbox to try it again shortly.

A sweep with nothing new (no notice sent or failed, nobody told it's fixed, the same people unreachable as
last time, nothing given up) posts nothing: a sweep every 30 minutes must not flood the channel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.helpdesk.channels import get_default_channel
from bot.notify.outbox import Connector, DeliveryReport, Result, Undeliverable
from bot.notify.report import STILL_SENDING, Failure, Tally, given_up_since, tally_sweep
from bot.notify.sweep import SEND_RATE
from bot.store.base import Store
from cards.common import to_dict
from cards.report import Failed, ReportView, build_delivery_report_card

__all__ = ["DeliveryReports"]

log = logging.getLogger(__name__)

LAST_REPORT = "delivery_report:last"  # when the last report was posted: "given up since" counts from it
NO_CHANNEL_RETRY = 60.0  # seconds: a report waits for a helpdesk channel to be set up
# Looks while notices are still being sent: about the time the rest takes to send, but never so often that
# the report is claimed more than LOOKS times before `settle_by` (each look is a claim, and the store sets
# aside an entry claimed MAX_CLAIMS times; the deliverer gives up at MAX_ATTEMPTS).
SETTLE_RETRY = (0.5, 120.0)
LOOKS = 30


def _failed(failures: list[Failure]) -> list[Failed]:
    return [Failed(f.who, f.cause, f.reason) for f in failures]


def _view(report: DeliveryReport, tally: Tally, given_up: Tally) -> ReportView:
    return ReportView(
        found=report.found,
        told=tally.told,
        already_told=report.already_told,
        muted=report.muted,
        fixed=report.fixed,
        causes=report.causes,
        unreachable=[f"{p.name} ({', '.join(p.causes)})" for p in report.unreachable],
        unreachable_total=report.unreachable_total,
        failed=tally.failed,
        reasons=dict(tally.reasons),
        failures=_failed(tally.failures),
        sending=tally.sending + tally.retrying,
        given_up=given_up.failed,
        given_up_reasons=dict(given_up.reasons),
        given_up_list=_failed(given_up.failures),
    )


class DeliveryReports:
    """The sender of `DeliveryReport` entries."""

    def __init__(self, store: Store, connector: Connector, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.connector = connector
        self.clock = clock

    async def send(self, report: DeliveryReport) -> Result:
        channel = await get_default_channel(self.store)
        if channel is None:
            raise Undeliverable("no helpdesk channel yet", permanent=False, retry_after=NO_CHANNEL_RETRY)
        now = self.clock()
        tally = await tally_sweep(self.store, report.sweep, now=now)
        if not tally.settled and now < report.settle_by:
            least = max(SETTLE_RETRY[0], (report.settle_by - report.at) / LOOKS)
            wait = min(max(least, tally.sending / SEND_RATE), SETTLE_RETRY[1])
            raise Undeliverable(
                f"{tally.sending} notice(s) {STILL_SENDING}",
                permanent=False,
                retry_after=min(wait, max(report.settle_by - now, SETTLE_RETRY[0])),
                backoff=False,
            )
        last = await self.store.get_setting(LAST_REPORT)
        given_up = await given_up_since(self.store, float((last or {}).get("at", 0.0)), besides=report.sweep)
        news = tally.told + tally.failed + tally.sending + tally.retrying + given_up.failed + report.fixed
        if not news and not report.unreachable_changed:
            return {"posted": False}
        posted = await self.connector.post_in_channel(
            to_dict(build_delivery_report_card(_view(report, tally, given_up))),
            service_url=channel.service_url,
            channel_id=channel.channel_id,
            bot_id=channel.bot_id,
        )
        try:  # it is posted: a failing note of when must not make it a retry (and a second post)
            await self.store.set_setting(LAST_REPORT, {"at": now})
        except Exception as exc:  # the store's own errors, Azure's: logged, the report stays sent
            log.warning("delivery report posted; could not note when: %r", exc)
        return {"posted": True, "activity_id": posted.activity_id, "conversation_id": posted.conversation_id}
