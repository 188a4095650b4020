"""One-click fixes, applied (README, "One-click fixes"): the service that writes a diagnosis' proposed fix as
whoever confirmed it, keeps each application, undoes filter fixes, and checks back after the next sync.

Modules: `applied` (the application's record, the errors, and `may_apply`: who may ask for which fix,
which the Teams layer asks before it offers one), `service` (`Fixer`), `rows` (the rows a fix writes as
who confirmed it, and whether they still hold), `followup` (the checks after a fix: an outbox kind's
sender, and the message the person gets).
"""

from bot.fixing.applied import (
    PERSON_TOO,
    Applied,
    FixError,
    NotAllowed,
    NotApplicable,
    Refused,
    State,
    may_apply,
)
from bot.fixing.followup import FixFollowups, followup_message, register_followups
from bot.fixing.service import Fixer, fixes_of, history

__all__ = [
    "PERSON_TOO",
    "Applied",
    "FixError",
    "FixFollowups",
    "Fixer",
    "NotAllowed",
    "NotApplicable",
    "Refused",
    "State",
    "fixes_of",
    "followup_message",
    "history",
    "may_apply",
    "register_followups",
]
