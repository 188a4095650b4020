"""The sandbox's Entra token endpoint: OpenID discovery and client-credentials tokens (what MSAL asks for)."""

from __future__ import annotations

import secrets

from aiohttp import web

from bot.sandbox.config import SandboxState

__all__ = ["EntraRoutes"]


class EntraRoutes:
    """/{tenant}/v2.0/.well-known/openid-configuration and /{tenant}/oauth2/v2.0/token."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration)
        router.add_post("/{tenant}/oauth2/v2.0/token", self.token)

    async def openid_configuration(self, request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}/{request.match_info['tenant']}"
        return web.json_response(
            {
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return _refusal(400, "unsupported_grant_type", "Only client_credentials is supported.")
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if not self._known_client(client_id, secret):
            return _refusal(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        token = secrets.token_urlsafe(24)
        self.state.tokens.add(token)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        )

    def _known_client(self, client_id: str, secret: str) -> bool:
        """Whether the client may have a token: any may when no client secrets are configured."""
        expected = self.state.config.client_secrets
        return not expected or (client_id in expected and secrets.compare_digest(expected[client_id], secret))


def _refusal(status: int, code: str, description: str) -> web.Response:
    """An OAuth 2.0 error body, as Entra answers a token request it refuses."""
    return web.json_response({"error": code, "error_description": description}, status=status)
