"""The Entra credential that opens a Storage account without its key: the app's own identity.

A STORE_URL without `AccountKey` (`TableEndpoint=https://<account>.table.core.windows.net/;QueueEndpoint=
https://<account>.queue.core.windows.net/`) is opened with a token for Azure Storage, as the identity that
also reads Dataverse and Graph: a user-assigned managed identity (App Service's identity endpoint), or an
app registration's client secret for a local run. The identity needs the account's "Storage Table Data
Contributor" and "Storage Queue Data Contributor" roles. azure-identity's credentials are used, not
DefaultAzureCredential: which identity opens the store is the one configured, never a guess.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["storage_credential"]


def storage_credential(
    *,
    managed_identity_client_id: str = "",
    tenant_id: str = "",
    client_id: str = "",
    client_secret: str = "",
    authority_host: str = "",
) -> AsyncTokenCredential:
    """The user-assigned managed identity `managed_identity_client_id`, or else the app registration
    `client_id` with `client_secret` in `tenant_id` (signing in at `authority_host`)."""
    from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential

    if managed_identity_client_id:
        return ManagedIdentityCredential(client_id=managed_identity_client_id)
    host = urlsplit(authority_host).netloc if authority_host else None
    return ClientSecretCredential(tenant_id, client_id, client_secret, authority=host)
