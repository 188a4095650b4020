"""Entra as the bot's own token requests meet it (the Bot Connector's tokens, `bot.notify.outbox.adapter`):
patched in at their HTTP session's `request`, answering discovery and client-credentials tokens, and
recording which thread asked for each token (the event loop's must never)."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from bot.notify.outbox import adapter

__all__ = ["EntraForTheBot"]


class EntraForTheBot:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, expires_in: int = 3599) -> None:
        self.expires_in = expires_in
        self.token_threads: list[str] = []
        monkeypatch.setattr(adapter._TimedHttp, "request", self)

    def __call__(self, method: str, url: str, *args: object, **kwargs: object) -> requests.Response:
        response = requests.Response()
        response.status_code, response.url, response.encoding = 200, url, "utf-8"
        response.headers["Content-Type"] = "application/json"
        if "openid-configuration" in url:
            base = "https://login.microsoftonline.com/botframework.com"
            body: dict[str, object] = {
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "issuer": f"{base}/v2.0",
            }
        else:
            self.token_threads.append(threading.current_thread().name)
            body = {
                "access_token": f"t{len(self.token_threads)}",
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
        response._content = json.dumps(body).encode()
        return response

    def asked_on(self, thread: threading.Thread) -> bool:
        return thread.name in self.token_threads
