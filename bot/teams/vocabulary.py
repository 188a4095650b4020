"""The words `bot.teams.intents` knows: what each one signals, and the phrases folded before the rules.

Tables only, no rules. A word may signal several concepts ("calendar": a record type and a place it should
show). Words outside `CONCEPTS` and `STOP` count as unknown, and may name a record (its subject).
"""

from __future__ import annotations

import re

__all__ = [
    "ACTIONS",
    "CONCEPTS",
    "CONTRACTIONS",
    "HELLO_WORDS",
    "HELP_WORDS",
    "LEADING",
    "NEGATION",
    "NEGATIVE",
    "NOT_ABOUT_SYNC",
    "NOT_TYPOS",
    "PHRASES",
    "QUESTION_WORDS",
    "RECORD_WORDS",
    "SHORT_TARGETS",
    "STOP",
    "THANK_WORDS",
]


def _set(spellings: str) -> frozenset[str]:
    return frozenset(spellings.split())


# Each word maps to the concepts it signals.
CONCEPTS: dict[str, tuple[str, ...]] = {}


def _words(concept: str, spellings: str) -> None:
    for word in spellings.split():
        CONCEPTS[word] = (*CONCEPTS.get(word, ()), concept)


_words(
    "appointment",
    "appointment appointments appt appts meeting meetings event events invite invites invitation "
    "invitations calendar calender calendars booking bookings",
)
_words("contact", "contact contacts")
_words("task", "task tasks todo todos")
# Words that name the synchronisation itself.
_words(
    "sync",
    "sync syncs synced syncd syncing synch synching synchronize synchronizes synchronized synchronizing "
    "synchronise synchronises synchronised synchronising synchronization synchronisation",
)
# An item said to be gone: enough on its own ("appt missing").
_words("gone", "missing vanished vanish disappear disappeared disappears disappearing nowhere gone")
# An item (not) seen somewhere: a sync signal only when negated ("can't see", "never showed up").
_words(
    "seen",
    "show shows showing showed shown appear appears appearing appeared reach reaches reached reaching "
    "land lands landed see seeing find",
)
_words("target", "outlook exchange owa phone mobile iphone android calendar calender")
_words("source", "dynamics d365 crm dataverse hub")
_words(
    "problem",
    "not never no none nothing missing broken issue issues problem problems fail fails failing failed "
    "error errors stuck gone lost stopped wrong",
)
_words(
    "mailbox",
    "mailbox mailboxes server side sss configuration config configured approved enabled tested settings "
    "setup set connected",
)
_words("check", "check verify test status ok okay correctly right diagnose diagnosis")
_words("escalate", "escalate escalation ticket helpdesk human person agent someone support it somebody")
_words(
    "talk",
    "talk speak need want open create raise log file connect get send look contact like help real",
)
_words("help", "help commands command options menu usage use what how can do ask work works")
_words(
    "greeting",
    "hi hello hey hiya yo morning afternoon evening howdy there good bot sync doctor all",
)
_words(
    "thanks",
    "thanks thank thx ty cheers great perfect awesome appreciated u you much many lot so fixed that it a "
    "ok okay mate worked helped helps really very",
)

# Trouble of any kind ("wrong", "error"), and plain negation: what turns "see" or "in Outlook" into a
# complaint ("outlook shows the wrong time zone" is not a missing item).
NEGATIVE = frozenset(w for w, concepts in CONCEPTS.items() if "problem" in concepts) | {"without"}
NEGATION = _set("not never no none nothing without missing")
# Words that name a record type outright ("meeting" may be a room or an occasion, "appointment" may not).
RECORD_WORDS = _set("appointment appointments appt appts contact contacts task tasks todo todos")

# Questions about other things: health of an app, other products, mailbox size and access. With one of
# these, "not", "missing" or "in Outlook" is not about sync; only a sync word still is ("emails and
# appointments don't sync").
NOT_ABOUT_SYNC = _set(
    "open opening opens opened start starts starting launch launching crash crashes crashing crashed "
    "freeze freezes freezing frozen froze hang hangs hanging slow slower responding respond load "
    "loading loads down login password locked full size quota storage space access shared permission "
    "permissions license licence install installed update upgrade signature theme search rules "
    "attachment attachments inbox email emails mail mails onedrive sharepoint teams files folder "
    "wifi vpn printer laptop excel pdf projector camera microphone headset ooo room number zone timezone "
    "download addin plugin button ribbon toolbar icon link"
)
# Asking the bot to do something in Dynamics or Outlook (not Sync Doctor's job): the first word that
# counts, after `LEADING` words ("can you book ...", "please create ...").
ACTIONS = _set(
    "create add book schedule reschedule cancel move invite delete remove assign close export import "
    "merge rename print update share change setup make write summarise summarize order install reset "
    "request send mark forward accept decline translate tell organise organize plan"
)
LEADING = _set("please pls can could would will you u i want need to like hey hi hello so ok okay quick just")

CONTRACTIONS = {
    "isnt": "is not",
    "isn't": "is not",
    "dont": "do not",
    "don't": "do not",
    "doesnt": "does not",
    "doesn't": "does not",
    "didnt": "did not",
    "didn't": "did not",
    "wont": "will not",
    "won't": "will not",
    "cant": "can not",
    "can't": "can not",
    "cannot": "can not",
    "arent": "are not",
    "aren't": "are not",
    "hasnt": "has not",
    "hasn't": "has not",
    "havent": "have not",
    "haven't": "have not",
    "whats": "what is",
    "what's": "what is",
    "its": "it is",
    "it's": "it is",
    "im": "i am",
    "i'm": "i am",
    "i'd": "i would",
    "wasnt": "was not",
    "wasn't": "was not",
    "werent": "were not",
    "weren't": "were not",
}
_ARRIVE = (
    r"(make|makes|made|making) it|(end|ends|ended|ending) up|(come|comes|came|coming) (over|through|across)"
)
_SET = "configured|setup|enabled|approved|connected"
PHRASES = (
    (re.compile(r"\b(to-?dos?|to do'?s)\b|\bto do\b(?= (list|items?|app))|(?<=my )to do\b"), " todo "),
    (re.compile(r"\bserver[ -]side[ -]sync(hroni[sz]ation)?\b"), " server side sss "),
    (re.compile(r"\bhelp ?desk\b"), " helpdesk "),
    (re.compile(r"\bsales ?hub\b"), " hub "),
    (re.compile(r"\baddress ?book\b"), " contacts "),
    (re.compile(r"\bcalendar (entry|item)\b"), " appointment "),
    (re.compile(r"\bset ?up\b"), " setup "),
    (re.compile(r"\bdynamics ?365\b"), " dynamics "),
    (re.compile(r"\be-?mail config(uration)?\b"), " mailbox configuration "),
    (re.compile(rf"\b(e-?mail|outlook)(\s+account)?\s+((is|are)\s+)?({_SET})\b"), r" mailbox \5 "),
    (re.compile(r"\bfollow[ -]?up\b"), " followup "),
    (re.compile(rf"\b({_ARRIVE}|(get|gets|got|getting) (over|through|across|into))\b"), " reached "),
    (re.compile(r"\bhow come\b"), " why "),
    (re.compile(r"\bout of sync\b"), " not synced "),
    (re.compile(r"\b(log ?in|logged in|sign ?in|signed in)\b"), " login "),
    (re.compile(r"\bout of (the )?office\b"), " ooo "),
    (re.compile(r"\b(meeting|conference|board) ?rooms?\b"), " room "),
    (re.compile(r"\bphone (number|call)s?\b"), " number "),
    (re.compile(r"\b(add-?ins?|plug-?ins?)\b"), " addin "),
)

# Real words one edit from a vocabulary word: never "corrected" ("outlook is slow" is not "is show").
NOT_TYPOS = _set("slow slower main mall shop snow sink mask tack even contract contracts")
# Typos are corrected towards words of five letters or more, and these shorter ones of the domain; not
# towards short everyday words ("last" is not "lost", "mate" is not "make").
SHORT_TARGETS = _set("sync task appt todo help")

THANK_WORDS = _set("thanks thank thx ty cheers appreciated awesome perfect great")
HELLO_WORDS = _set("hi hello hey hiya yo morning afternoon evening howdy")
HELP_WORDS = _set("help commands command options menu usage what how")
# Words that say nothing about the intent: they don't count as unknown either.
STOP = _set(
    "a an the my me i is are am be this that it its to in on of for with and or do does did can could "
    "would please pls you your we our there here just still again now yet some any"
)
# Words of a question that are never part of a record's subject.
QUESTION_WORDS = _set(
    "why what where when who how isn t not no missing from into on at up end ends ended come comes "
    "came coming across over through make made nothing none anymore anywhere since"
)
