"""Who may write what in the sandbox: a small model of Dataverse's privileges for the writes one-click
fixes make (domain.md section 6b).

- A user's own sync filters (`userqueries` they own): prvCreateUserQuery, prvWriteUserQuery,
  prvDeleteUserQuery, which every user not listed in `$privileges` has (User level in the default roles).
  A row they create is owned by them.
- Another user's `userqueries`: prvAdminFilter.
- `mailboxes`: prvWriteMailbox; a change of `emailrouteraccessapproval` also needs
  prvApproveRejectEmailAddress (checked second).
- The fixture's `"$privileges": {"<systemuserid>": ["prvWriteMailbox", ...]}` lists who has which. Without
  the key, nobody but the application user has any beyond their own filters. With it, a listed user has
  exactly those listed (list the UserQuery privileges too for one who may manage their own filters, leave
  them out for one whose role may not); unlisted users only their own filters.
- The application user (no `CallerObjectId`) has every privilege, unless `$privileges` lists it (then
  exactly those listed). Impersonation can only narrow what the app may do, as in Dataverse: a write made
  as a user needs the privilege in both the user's and the application user's sets (the intersection).
  Not modelled: the app's own prvActOnBehalfOfAnotherUser (every impersonation is allowed).

Reads are `Org.may_read`'s (the same key's prvReadActivity / prvReadContact). Refusals are Dataverse's:
403, code 0x80040220, "Principal user (Id=..., type=8, ...) is missing prvXxx privilege (Id=...) on OTC=...
for entity '...'". Not modelled: access levels (User, Business Unit, Organization), security roles,
sharing, and self-approval of one's own mailbox address.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from bot.sandbox.columns import WriteError
from bot.sandbox.org import Org
from bot.sandbox.schema import ENTITY_SETS, Row, key_of
from bot.sandbox.wire import APP_USER_ID

__all__ = ["OWN_FILTERS", "refusal"]

Operation = Literal["create", "update", "delete"]

# Every user's privileges over the userqueries they own (their personal views and sync filters).
OWN_FILTERS = frozenset({"prvCreateUserQuery", "prvReadUserQuery", "prvWriteUserQuery", "prvDeleteUserQuery"})
_OBJECT_TYPE_CODES = {"userqueries": 4230, "mailboxes": 9606}
_METHODS = {"create": "POST", "update": "PATCH", "delete": "DELETE"}


def refusal(
    org: Org, caller: str, operation: Operation, entity_set: str, row: Row | None, changes: Mapping[str, Any]
) -> WriteError | None:
    """Why `caller` (a systemuserid) may not make this write: the 403 Dataverse answers, or None.

    Args:
        row: the row as it is now (None when the write creates it: then the caller will own it).
        changes: the columns the write sets.
    """
    for privilege in _needed(caller, operation, entity_set, row, changes):
        if not _has(org, caller, privilege):
            return _missing(org, caller, privilege, entity_set, operation)
    return None


def _needed(
    caller: str, operation: Operation, entity_set: str, row: Row | None, changes: Mapping[str, Any]
) -> list[str]:
    if entity_set == "mailboxes":
        return [
            "prvWriteMailbox",
            *(["prvApproveRejectEmailAddress"] if "emailrouteraccessapproval" in changes else []),
        ]
    own = row is None or key_of(row.get("_ownerid_value") or "") == key_of(caller)
    if own:
        return [
            {"create": "prvCreateUserQuery", "update": "prvWriteUserQuery", "delete": "prvDeleteUserQuery"}[
                operation
            ]
        ]
    return ["prvAdminFilter"]


def _privileges(org: Org, caller: str) -> frozenset[str] | None:
    """What `caller` holds (None: everything)."""
    caller = key_of(caller)
    if caller in org.privileges:
        return org.privileges[caller]
    return None if caller == APP_USER_ID else OWN_FILTERS


def _effective(org: Org, caller: str) -> frozenset[str] | None:
    """What a write made as `caller` may do (None: everything): their privileges, and, impersonated
    (`caller` is not the application user), only those the application user holds too."""
    own = _privileges(org, caller)
    app = None if key_of(caller) == APP_USER_ID else _privileges(org, APP_USER_ID)
    if own is None or app is None:
        return app if own is None else own
    return own & app


def _has(org: Org, caller: str, privilege: str) -> bool:
    held = _effective(org, caller)
    return held is None or privilege in held


def _missing(org: Org, caller: str, privilege: str, entity_set: str, operation: Operation) -> WriteError:
    held = _effective(org, caller) or frozenset()
    privilege_id = uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:privilege:{privilege}")
    return WriteError(
        403,
        "0x80040220",
        f"Principal user (Id={key_of(caller)}, type=8, roleCount=1, privilegeCount={len(held)}) is missing "
        f"{privilege} privilege (Id={privilege_id}) on OTC={_OBJECT_TYPE_CODES[entity_set]} for entity "
        f"'{ENTITY_SETS[entity_set].logical_name}'. context: Method={_METHODS[operation]}, "
        f"PrivilegeName={privilege}.",
    )
