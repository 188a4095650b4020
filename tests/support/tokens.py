"""Bot Framework bearer tokens, checked the way production checks them: botbuilder fetches the signing
keys over HTTP, here from a local OpenID endpoint that serves a test key (no internet), and the tokens are
signed locally."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from botframework.connector.auth import AuthenticationConstants, ChannelValidation
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

APP_ID = "11111111-2222-4333-8444-555555555555"
KID = "sync-doctor-test-key"
CHANNEL_ISSUER = "https://api.botframework.com"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


TRUSTED_KEY = _rsa_key()
UNTRUSTED_KEY = _rsa_key()


class OpenIdServer:
    """`/.well-known/openidconfiguration` and its JWKS on 127.0.0.1, in a thread of its own: botbuilder
    fetches them with `requests` (blocking), so they can't be served by the event loop that waits."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        documents: dict[str, bytes] = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = f"{base}/v1/.well-known/openidconfiguration"
        documents["/v1/.well-known/openidconfiguration"] = json.dumps(
            {"issuer": CHANNEL_ISSUER, "jwks_uri": f"{base}/v1/keys"}
        ).encode()
        documents["/v1/keys"] = json.dumps({"keys": keys}).encode()
        self._thread = threading.Thread(target=self._server.serve_forever, name="openid", daemon=True)

    def __enter__(self) -> OpenIdServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def jwks() -> list[dict[str, Any]]:
    key = RSAAlgorithm.to_jwk(TRUSTED_KEY.public_key(), as_dict=True)
    return [{**key, "kid": KID, "use": "sig", "endorsements": ["msteams"]}]


@contextlib.contextmanager
def trusting_local_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenIdServer]:
    """botbuilder trusts the test key: its metadata URLs (channel, and emulator and skills) point at a local
    OpenID server, with a fresh key cache."""
    with OpenIdServer(jwks()) as server:
        monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint", server.url)
        monkeypatch.setattr(AuthenticationConstants, "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL", server.url)
        monkeypatch.setattr(JwtTokenExtractor, "metadataCache", {})
        yield server


def claims(service_url: str, **changes: Any) -> dict[str, Any]:
    """What the Bot Connector's token says for `service_url`, with `changes` (None removes a claim)."""
    now = int(time.time())
    base = {
        "iss": CHANNEL_ISSUER,
        "aud": APP_ID,
        "serviceurl": service_url,
        "nbf": now - 60,
        "iat": now - 60,
        "exp": now + 3600,
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def _b64(part: dict[str, Any]) -> str:
    return jwt.utils.base64url_encode(json.dumps(part).encode()).decode()


def signed(
    payload: dict[str, Any], *, key: Any = TRUSTED_KEY, kid: str | None = KID, alg: str = "RS256"
) -> str:
    """A JWT of any claims (PyJWT's encode refuses some wrong ones), signed with `key`."""
    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid is not None else {})}
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    algorithm = jwt.algorithms.get_default_algorithms()[alg]
    signature = algorithm.sign(signing_input.encode(), algorithm.prepare_key(key))
    return f"{signing_input}.{jwt.utils.base64url_encode(signature).decode()}"


def unsigned(payload: dict[str, Any], kid: str | None = KID) -> str:
    header = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
    return f"{_b64(header)}.{_b64(payload)}."
