"""Orgs with many affected people, for tests of the sweep and delivery at scale."""

from __future__ import annotations

import json
from pathlib import Path

from bot.sandbox import SAMPLE_ORG

__all__ = ["broken_org"]


def broken_org(path: Path, people: int) -> list[str]:
    """Write the sample org plus `people` users whose mailboxes have Appointments, Contacts, and Tasks set to None."""
    data = json.loads(SAMPLE_ORG.read_text())
    user = next(u for u in data["systemusers"] if u["fullname"] == "Megan Bowen")
    mailbox = next(m for m in data["mailboxes"] if m["_regardingobjectid_value"] == user["systemuserid"])
    ids = []
    for n in range(1, people + 1):
        systemuserid = f"a3000000-0000-4000-8000-{n:012d}"
        aad = f"0c000000-0000-4000-8000-{n:012d}"
        ids.append(aad)
        data["systemusers"].append(
            {
                **user,
                "systemuserid": systemuserid,
                "azureactivedirectoryobjectid": aad,
                "fullname": f"Person {n}",
                "internalemailaddress": f"p{n}@example.com",
                "_defaultmailbox_value": f"b3000000-0000-4000-8000-{n:012d}",
            }
        )
        data["mailboxes"].append(
            {
                **mailbox,
                "mailboxid": f"b3000000-0000-4000-8000-{n:012d}",
                "_regardingobjectid_value": systemuserid,
                "emailaddress": f"p{n}@example.com",
            }
        )
    path.write_text(json.dumps(data))
    return ids
