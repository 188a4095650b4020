"""What a chat message asks for, without a remote language model.

Words are normalised (case, punctuation, contractions, a few phrases), typos within one edit of a known word
are corrected, and a small table of rules decides. Intent ids and record types are a contract (design.md
section 3). The words and what they signal are in `bot.teams.vocabulary`; what the vocabulary doesn't claim
may name a record: `subject_words`. Words and edits come from `bot.matching`, the tokenizer and edit
distance the record matching uses too.

A diagnosis needs a sync signal: a sync word, an item said to be missing, or one said not to show (up) in
Outlook, Exchange or a phone; or "diagnose"/"check" with a record type. Words that overlap a record's
subject never make one on their own ("how much money did we make last quarter" is not about the
"Quarterly review"), nor do questions about Outlook itself, other products, or doing things in Dynamics.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from bot.diagnosis import RecordType
from bot.matching import within_one_edit, words
from bot.teams.vocabulary import (
    ACTIONS,
    CONCEPTS,
    CONTRACTIONS,
    HELLO_WORDS,
    HELP_WORDS,
    LEADING,
    NEGATION,
    NEGATIVE,
    NOT_ABOUT_SYNC,
    NOT_TYPOS,
    PHRASES,
    QUESTION_WORDS,
    RECORD_WORDS,
    SHORT_TARGETS,
    STOP,
    THANK_WORDS,
)

__all__ = [
    "INTENTS",
    "MENTION",
    "Intent",
    "IntentName",
    "RecordLink",
    "classify",
    "is_vocabulary",
    "record_link",
    "subject_words",
]

IntentName = Literal["diagnose", "check_mailbox", "escalate", "help", "greeting", "thanks", "out_of_scope"]
INTENTS: tuple[IntentName, ...] = (
    "diagnose",
    "check_mailbox",
    "escalate",
    "help",
    "greeting",
    "thanks",
    "out_of_scope",
)


@dataclass(frozen=True)
class Intent:
    name: IntentName
    record_type: RecordType | None = None

    def to_dict(self, text: str) -> dict[str, str | None]:
        return {"text": text, "intent": self.name, "record_type": self.record_type}


_MAX_CHARS = 1000  # a question is short; a 10,000-character paste is judged by its start
# An @mention: `<at>Sync Doctor</at>`. The name is bounded and has no markup, so the pattern is linear: an
# unbounded `<at>.*?</at>` scans to the end from every `<at>` when none is closed (seconds on 28 KB).
MENTION = re.compile(r"<at>[^<]{0,256}</at>", re.IGNORECASE)
_TARGETS = sorted(w for w in CONCEPTS if len(w) >= 5 or w in SHORT_TARGETS)


def _collapse_repeats(word: str) -> str:
    return re.sub(r"(.)\1{2,}", r"\1\1", word)  # "apppointments" -> "appointments"


def _correct(word: str) -> str:
    if word in CONCEPTS or word in STOP or word in QUESTION_WORDS or word in NOT_TYPOS or len(word) < 4:
        return word
    word = _collapse_repeats(word)
    if word in CONCEPTS:
        return word
    for known in _TARGETS:
        # Short words are easy to mistake for each other: only fix those one edit from a long-enough word.
        if (len(word) >= 5 or known[0] == word[0]) and within_one_edit(word, known):
            return known
    return word


def tokens(text: str) -> list[str]:
    """Normalised, typo-corrected words of a message (an @mention of the bot is dropped)."""
    lowered = MENTION.sub(" ", text).lower().replace("’", "'")
    for pattern, replacement in PHRASES:
        lowered = pattern.sub(replacement, lowered)
    found: list[str] = []
    for raw in words(lowered, joins="'"):
        expanded = CONTRACTIONS.get(raw, raw.replace("'", ""))
        found.extend(_correct(w) for w in expanded.split())
    return found


def _record_type(said: list[str]) -> RecordType | None:
    for word in said:
        for concept in CONCEPTS.get(word, ()):
            if concept in ("appointment", "contact", "task"):
                return concept  # type: ignore[return-value]
    return None


_ASKS_HOW = re.compile(r"\bhow (do|can|could|would|should|to|does)\b")
_WHERE_IS = re.compile(r"\bwhere (is|are|did|has|have|was|were|does)\b")  # not "where can i download"
# "not in Outlook", "missing from my calendar", "never on my phone"
_PLACE = re.compile(
    r"\b(in|on|into|onto|to|from) (my |the |our )?(outlook|exchange|owa|calendar|calender|phone)"
)


@dataclass(frozen=True)
class _Signals:
    """What a message's words point at."""

    words: list[str]
    concepts: dict[str, list[str]]
    unknown: int  # words that are neither known nor stop words
    record: RecordType | None

    def has(self, concept: str) -> bool:
        return bool(self.concepts[concept])

    @property
    def negative(self) -> bool:
        return any(w in NEGATIVE for w in self.words)

    @property
    def off_topic(self) -> bool:
        """About an app's health, another product, or a mailbox's size or access rather than sync."""
        return any(w in NOT_ABOUT_SYNC for w in self.words)

    @property
    def missing(self) -> bool:
        """An item said to be missing or not to show: "appt missing", "never showed up", "where is my"."""
        negated = any(w in NEGATION for w in self.words)
        placed = negated and self.has("target") and bool(_PLACE.search(" ".join(self.words)))
        unseen = self.has("seen") and negated
        return self.has("gone") or unseen or placed or self.where

    @property
    def where(self) -> bool:
        """ "where is my appointment" asks for a lost item; "where is the meeting room" doesn't."""
        if not _WHERE_IS.search(" ".join(self.words)):
            return False
        named = any(w in RECORD_WORDS for w in self.words) or self.has("source") or self.has("target")
        return "my" in self.words or named

    @property
    def asks_for_something_else(self) -> bool:
        """How to use Dynamics or Outlook, or a request to do something there ("book a room for friday")."""
        first = next((w for w in self.words if w not in LEADING), "")
        return bool(_ASKS_HOW.search(" ".join(self.words))) or first in ACTIONS

    @property
    def complaint(self) -> bool:
        """A sync word or a missing item: what outweighs a how-to or an action ("I made it, it never synced")."""
        return self.negative and (self.has("sync") or self.missing)


def _escalate(s: _Signals) -> bool:
    explicit = "ticket" in s.words or "escalate" in s.words
    asks_who = "who" in s.words and any(w in ("talk", "speak", "contact") for w in s.words)
    wants_a_person = (s.has("escalate") or asks_who) and (s.has("talk") or len(s.words) <= 3 or explicit)
    # "contact support" asks for a person; "my contact isn't syncing" doesn't.
    return wants_a_person and (explicit or not (s.record and (s.has("sync") or s.missing)))


def _mailbox_only(s: _Signals) -> bool:
    return "mailbox" in s.words and s.record is None and not s.off_topic and not s.asks_for_something_else


def _not_about_records(s: _Signals) -> bool:
    """Doing something (or how to), or another subject, with no complaint about sync to outweigh it."""
    elsewhere = s.asks_for_something_else and not s.complaint
    return elsewhere or (s.off_topic and not s.has("sync"))


def _record_problem(s: _Signals) -> bool:
    if s.record is None or _not_about_records(s):
        return False
    from_source = s.has("source") and s.negative
    return s.has("sync") or s.missing or from_source


def _sync_problem(s: _Signals) -> bool:
    # "calendar sync not working", "nothing I schedule in dynamics ends up in outlook", "why is my Quarterly
    # review with Contoso not in Outlook": no record word, a sync complaint: appointments by default.
    if s.record is not None or "mailbox" in s.words or s.off_topic or _not_about_records(s):
        return False
    somewhere = s.has("target") or s.has("source")
    return (s.has("sync") and (somewhere or s.negative)) or (s.missing and somewhere)


def _mailbox_check(s: _Signals) -> bool:
    setup = s.has("mailbox") and (s.has("check") or len(s.concepts["mailbox"]) >= 2)
    sync_setup = s.has("sync") and (s.has("check") or s.has("mailbox"))
    return s.record is None and s.unknown <= 2 and not s.off_topic and (setup or sync_setup)


def _record_check(s: _Signals) -> bool:
    return s.record is not None and s.has("check") and s.unknown <= 3 and not _not_about_records(s)


def _thanks(s: _Signals) -> bool:
    return s.unknown == 0 and any(w in THANK_WORDS for w in s.words)


def _greeting(s: _Signals) -> bool:
    asks_for_help = any(w in _EXPLICIT_HELP for w in s.words)  # "hello, can you help me"
    return s.unknown == 0 and any(w in HELLO_WORDS for w in s.words) and not asks_for_help


_EXPLICIT_HELP = frozenset({"help", "commands", "command", "menu", "options", "usage"})


def _help(s: _Signals) -> bool:
    explicit = any(w in _EXPLICIT_HELP for w in s.words)
    about_records = s.record is not None or s.has("target") or s.has("source")
    vague_enough = s.unknown == 0 or (explicit and s.unknown <= 1)
    return not about_records and vague_enough and any(w in HELP_WORDS for w in s.words)


# First match wins. A diagnosis carries the record type the message names (appointment when unsaid).
_RULES: tuple[tuple[Callable[[_Signals], bool], IntentName, bool], ...] = (
    (_escalate, "escalate", False),
    (_mailbox_only, "check_mailbox", False),
    (_record_problem, "diagnose", True),
    (_sync_problem, "diagnose", True),
    (_mailbox_check, "check_mailbox", False),
    (_record_check, "diagnose", True),
    (_thanks, "thanks", False),
    (_greeting, "greeting", False),
    (_help, "help", False),
)
_ALL_CONCEPTS = sorted({c for concepts in CONCEPTS.values() for c in concepts})


# A record's address as Dynamics 365 shows it: `.../main.aspx?...&etn=appointment&id=<guid>` (or, in older
# links, the table's type code `etc=4201`); the id may be wrapped in braces, raw or %-encoded.
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_BARE_GUID = re.compile(r"(?<![0-9a-z-])" + _GUID.pattern + r"(?![0-9a-z-])", re.IGNORECASE)
_LINKED_TYPES: dict[str, RecordType] = {
    "appointment": "appointment",
    "recurringappointmentmaster": "appointment",  # a series: its id is recognised as an appointment's
    "contact": "contact",
    "task": "task",
}
_TYPE_CODES = {"4201": "appointment", "4251": "recurringappointmentmaster", "2": "contact", "4212": "task"}


@dataclass(frozen=True)
class RecordLink:
    """A record a message names: by its Dynamics 365 link (`table` known) or by a bare id (not).

    `record_type` is None for a bare id, and for a link to a table Sync Doctor doesn't check (`table`
    says which, so the answer can say so)."""

    id: str
    record_type: RecordType | None
    table: str | None = None


def record_link(text: str) -> RecordLink | None:
    """The record a message links to or names by id, if any. A link's query is read as a query (HTML
    escaping undone, `id` and `etn`/`etc` by name): never the first id-looking value in it (`appid`)."""
    text = html.unescape(text[:_MAX_CHARS])
    for url in _URL.findall(text):
        query = parse_qs(urlsplit(url).query)
        table = (query.get("etn") or [_TYPE_CODES.get((query.get("etc") or [""])[0], "")])[0].lower()
        found = _GUID.search((query.get("id") or [""])[0])
        if found is not None and table:
            return RecordLink(found.group().lower(), _LINKED_TYPES.get(table), table)
    if _URL.search(text):
        return None  # a link, but not to a record: its ids are the app's or the page's, not a record's
    bare = _BARE_GUID.search(text)
    return RecordLink(bare.group().lower(), None) if bare is not None else None


def classify(text: str) -> Intent:
    """The intent of one chat message.

    Usage::

        classify("appt from CRM not on my calendar")  # Intent("diagnose", "appointment")
    """
    text = text[:_MAX_CHARS]
    link = record_link(text)
    if link is not None:  # judge the words around the link or id, not the address's own words
        text = _BARE_GUID.sub(" ", _URL.sub(" ", html.unescape(text)))
        if link.table is not None and not text.strip(" ?!.,:"):
            return Intent("diagnose", link.record_type)  # a pasted link alone: "what about this one?"
    intent = _classified(text)
    if link is not None and link.table is not None and intent.name == "diagnose":
        return Intent("diagnose", link.record_type)  # the link says which table
    return intent


def _classified(text: str) -> Intent:
    said = tokens(text)
    if not said:  # empty, only an @mention, or only punctuation: show what the bot can do
        return Intent("help") if MENTION.sub("", text).strip(" ?!.") == "" else Intent("out_of_scope")
    signals = _Signals(
        words=said,
        concepts={c: [w for w in said if c in CONCEPTS.get(w, ())] for c in _ALL_CONCEPTS},
        unknown=sum(1 for w in said if w not in CONCEPTS and w not in STOP),
        record=_record_type(said),
    )
    for rule, name, with_record in _RULES:
        if rule(signals):
            return Intent(name, (signals.record or "appointment") if with_record else None)
    return Intent("out_of_scope")


def is_vocabulary(word: str) -> bool:
    """True for words that belong to the question rather than to a record's subject."""
    word = word.lower()
    return (
        word in CONCEPTS
        or word in STOP
        or word in QUESTION_WORDS
        or word in CONTRACTIONS
        or _correct(word) in CONCEPTS
    )


_MAX_SUBJECT_WORDS = 8


def subject_words(text: str) -> list[str]:
    """The words of a message that could come from a record's subject: not the question's own vocabulary.

    Usage::

        subject_words("Quartely reveiw isn't on my calendar")  # ["quartely", "reveiw"]
    """
    text = _URL.sub(" ", MENTION.sub(" ", text[:_MAX_CHARS]))  # a link's words are no subject's
    found = words(text.lower())
    return [w for w in found if not is_vocabulary(w) and len(w) > 1][:_MAX_SUBJECT_WORDS]
