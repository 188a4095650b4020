"""Azure Storage may store an insert and still answer it with a 5xx ("the operation may or may not have
succeeded"); the SDK then sends it again and meets its own entry (409). That entry is the notice's, with
its message: queueing it must say so, not withdraw the message (the notice would never go out, and its
dedupe key would keep it from being queued again)."""

from __future__ import annotations

import time
from typing import Any

from azure.core.pipeline.transport import AioHttpTransport

from bot.sandbox.azurite import Azurite
from bot.store.azure import AzureStore


class _StoredButAnswered503(AioHttpTransport):  # type: ignore[misc]
    """Azure Storage at the HTTP boundary: the first insert of an outbox entry is stored, and answered 503."""

    answered = 0

    async def send(self, request: Any, **kwargs: Any) -> Any:
        response = await super().send(request, **kwargs)
        if request.method == "POST" and request.url.rstrip("/").endswith("outbox") and not self.answered:
            self.answered += 1
            response.status_code = 503
        return response


async def test_an_insert_stored_but_answered_503_is_queued_once_and_delivered(azurite: Azurite) -> None:
    store = AzureStore(azurite.connection_string, prefix=f"lost{int(time.time() * 1000) % 10**8}")
    transport = _StoredButAnswered503()
    store._options["transport"] = transport  # the clients are made at the first call, with it
    try:
        assert await store.enqueue("notify:u:cause", "notify_user", {"user": "u"})
        assert transport.answered == 1  # the SDK sent the insert again after the 503
        [entry] = await store.claim_due(limit=5, lease_seconds=30)
        assert entry.dedupe_key == "notify:u:cause"
        await store.mark_sent(entry)
        assert await store.enqueue("notify:u:cause", "notify_user", {"user": "u"}) is False  # still once
    finally:
        await store.close()
