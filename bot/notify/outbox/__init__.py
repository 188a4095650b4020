"""The outbox: durable sends through the Bot Connector (design.md section 7).

Producers queue a typed payload under a dedupe key (`enqueue`); a `Deliverer` claims due entries, reads
each one's payload (`kinds.parse`), hands it to the sender registered for its `Kind` and records the
outcome. `limits` keeps Teams' send limits,
`adapter` the CloudAdapter (its timeouts, and what it keeps between sends), `connector` the
sends, `worker` the deliverer's wiring and its loop.
"""

from __future__ import annotations

from bot.notify.outbox.adapter import close_adapter, connector_adapter, send_timeout
from bot.notify.outbox.connector import Connector, Posted, Undeliverable, conversation_with
from bot.notify.outbox.deliverer import Deliverer, Result, Sender
from bot.notify.outbox.kinds import (
    DeliveryReport,
    Digest,
    Kind,
    NotifyProblem,
    NotifyUser,
    PostTicket,
    Unreached,
    UpdateTicketCard,
    enqueue,
)
from bot.notify.outbox.limits import SendLimiter, TokenBucket
from bot.notify.outbox.worker import deliverer_for, drain_forever

__all__ = [
    "Connector",
    "Deliverer",
    "DeliveryReport",
    "Digest",
    "Kind",
    "NotifyProblem",
    "NotifyUser",
    "PostTicket",
    "Posted",
    "Result",
    "SendLimiter",
    "Sender",
    "TokenBucket",
    "Undeliverable",
    "Unreached",
    "UpdateTicketCard",
    "close_adapter",
    "connector_adapter",
    "conversation_with",
    "deliverer_for",
    "drain_forever",
    "enqueue",
    "send_timeout",
]
