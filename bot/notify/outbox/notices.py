"""How the sweep's notices are sent: the finding's card, to the person's 1:1 chat."""

from __future__ import annotations

from botbuilder.core import CardFactory, MessageFactory

from bot.notify.outbox.connector import Connector, conversation_with
from bot.notify.outbox.kinds import NotifyProblem
from bot.store.base import Store
from cards.common import to_dict
from cards.notice import build_problem_card

__all__ = ["ProblemNotices"]


class ProblemNotices:
    """The sender of `NotifyProblem` entries."""

    def __init__(self, store: Store, connector: Connector) -> None:
        self.store = store
        self.connector = connector

    async def send(self, notice: NotifyProblem) -> None:
        reference = notice.reference or await conversation_with(
            self.store, notice.tenant, notice.user, otherwise="no conversation with the user any more"
        )
        card = CardFactory.adaptive_card(to_dict(build_problem_card(notice.finding, user=notice.user)))
        await self.connector.send(reference, MessageFactory.attachment(card))
