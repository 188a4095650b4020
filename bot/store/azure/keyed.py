"""Conversation references (a partition per user, a row per tenant), settings and leases (a partition per
key prefix: "card", "watch", "lease", ...) on Table Storage."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any
from urllib.parse import unquote

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from bot.store.azure.account import Account, etag, pack, table_key, unpack
from bot.store.base import lease_key

__all__ = ["KeyedParts"]


def _setting_keys(setting: str) -> tuple[str, str]:
    kind, _, rest = setting.partition(":")
    return table_key(kind), table_key(rest)


class KeyedParts(Account):
    """References, settings and leases: what is read and written by its key."""

    async def save_reference(self, tenant: str, user_aad: str, reference: dict[str, Any]) -> None:
        await self._start()
        await self._table("refs").upsert_entity(
            {
                "PartitionKey": table_key(user_aad.lower()),
                "RowKey": table_key(tenant.lower()),
                "tenant": tenant.lower(),
                "updated": time.time(),
                **pack("reference", json.dumps(reference)),
            },
            mode=UpdateMode.REPLACE,
        )

    async def get_reference(self, tenant: str, user_aad: str) -> dict[str, Any] | None:
        await self._start()
        entity = await self._get("refs", table_key(user_aad.lower()), table_key(tenant.lower()))
        return None if entity is None else dict(json.loads(unpack("reference", entity)))

    async def find_reference(self, user_aad: str) -> tuple[str, dict[str, Any]] | None:
        await self._start()
        rows = self._table("refs").query_entities(
            "PartitionKey eq @user", parameters={"user": table_key(user_aad.lower())}
        )
        newest = None
        async for entity in rows:
            if newest is None or entity["updated"] > newest["updated"]:
                newest = entity
        return None if newest is None else (newest["tenant"], dict(json.loads(unpack("reference", newest))))

    async def delete_reference(self, tenant: str, user_aad: str) -> None:
        await self._start()
        await self._table("refs").delete_entity(table_key(user_aad.lower()), table_key(tenant.lower()))

    async def set_setting(self, key: str, value: dict[str, Any]) -> None:
        await self._start()
        partition, row = _setting_keys(key)
        await self._table("settings").upsert_entity(
            {"PartitionKey": partition, "RowKey": row, **pack("value", json.dumps(value))},
            mode=UpdateMode.REPLACE,
        )

    async def get_setting(self, key: str) -> dict[str, Any] | None:
        await self._start()
        entity = await self._get("settings", *_setting_keys(key))
        return None if entity is None else dict(json.loads(unpack("value", entity)))

    async def add_setting(self, key: str, value: dict[str, Any]) -> bool:
        """Insert-if-absent: the service refuses a second entity with the same keys (409), atomically."""
        await self._start()
        partition, row = _setting_keys(key)
        try:
            await self._table("settings").create_entity(
                {"PartitionKey": partition, "RowKey": row, **pack("value", json.dumps(value))}
            )
        except ResourceExistsError:
            return False
        return True

    async def list_settings(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """One partition's settings (the partition is the key's prefix), in key order."""
        await self._start()
        rows = self._table("settings").query_entities(
            "PartitionKey eq @prefix", parameters={"prefix": table_key(prefix)}
        )
        found = [
            (f"{prefix}:{unquote(entity['RowKey'])}", dict(json.loads(unpack("value", entity))))
            async for entity in rows
        ]
        return sorted(found, key=lambda item: item[0])

    async def delete_setting(self, key: str) -> None:
        await self._start()
        await self._table("settings").delete_entity(*_setting_keys(key))

    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take a named lease if it is free or expired; the ETag makes two takers agree on one winner."""
        await self._start()
        partition, row = _setting_keys(lease_key(name))
        table, now = self._table("settings"), time.time()
        held = await self._get("settings", partition, row)
        lease = {"PartitionKey": partition, "RowKey": row, "owner": owner, "until": now + seconds}
        try:
            if held is None:
                await table.create_entity(lease)
            elif held["owner"] != owner and held["until"] > now:
                return False
            else:
                await table.update_entity(
                    lease,
                    mode=UpdateMode.REPLACE,
                    etag=etag(held),
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            return False  # someone took it between our read and our write
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        await self._start()
        partition, row = _setting_keys(lease_key(name))
        held = await self._get("settings", partition, row)
        if held is not None and held["owner"] == owner:
            # When it expired and someone else took it meanwhile, the ETag no longer matches: theirs stays.
            with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
                await self._table("settings").delete_entity(
                    partition, row, etag=etag(held), match_condition=MatchConditions.IfNotModified
                )
