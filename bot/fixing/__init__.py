"""One-click fixes, applied (docs/fixes-spec.md): the service that writes a diagnosis' proposed fix as
whoever confirmed it, keeps each application, undoes filter fixes, and checks back after the next sync.

Modules: `applied` (the application's record and the errors), `service` (`Fixer`), `followup` (the
checks after a fix: an outbox kind's sender, and the message the person gets).
"""

from bot.fixing.applied import Applied, FixError, NotAllowed, NotApplicable, Refused, State
from bot.fixing.followup import FixFollowups, followup_message, register_followups
from bot.fixing.service import Fixer, fixes_of, history

__all__ = [
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
    "register_followups",
]
