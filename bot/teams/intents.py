"""What a chat message asks for, without a remote language model.

Words are normalised (case, punctuation, contractions), typos within one edit of a known word are
corrected, and a small table of rules decides. Intent ids and record types are a contract
(design.md section 3). What the vocabulary doesn't claim may name a record: `subject_words`. Words and
edits come from `bot.matching`, the tokenizer and edit distance the record matching uses too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.diagnosis import RecordType
from bot.matching import within_one_edit, words

__all__ = ["INTENTS", "MENTION", "Intent", "IntentName", "classify", "is_vocabulary", "subject_words"]

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


# Vocabulary: each word maps to the concepts it signals.
_CONCEPTS: dict[str, tuple[str, ...]] = {}


def _words(concept: str, *spellings: str) -> None:
    for word in spellings:
        _CONCEPTS[word] = (*_CONCEPTS.get(word, ()), concept)


_words(
    "appointment",
    "appointment",
    "appointments",
    "appt",
    "appts",
    "meeting",
    "meetings",
    "event",
    "events",
    "invite",
    "invites",
    "invitation",
    "invitations",
    "calendar",
    "calender",
    "booking",
)
_words("contact", "contact", "contacts")
_words("task", "task", "tasks", "todo", "todos")
_words(
    "sync",
    "sync",
    "syncs",
    "synced",
    "syncing",
    "synch",
    "synching",
    "synchronize",
    "synchronizes",
    "synchronized",
    "synchronizing",
    "synchronise",
    "synchronised",
    "synchronization",
    "synchronisation",
    "show",
    "shows",
    "showing",
    "showed",
    "shown",
    "appear",
    "appears",
    "appearing",
    "reach",
    "reached",
    "reaching",
    "missing",
    "through",
    "over",
    "see",
    "find",
    "vanished",
    "disappear",
    "disappeared",
    "disappears",
    "nowhere",
    "getting",
    "make",
    "made",
)
_words("target", "outlook", "exchange", "owa", "phone", "mobile", "iphone", "android", "calendar", "calender")
_words("source", "dynamics", "d365", "crm", "dataverse", "hub")
_words(
    "problem",
    "not",
    "never",
    "missing",
    "broken",
    "issue",
    "issues",
    "problem",
    "problems",
    "why",
    "fail",
    "fails",
    "failing",
    "failed",
    "error",
    "stuck",
    "gone",
    "lost",
    "stopped",
    "wrong",
    "working",
    "where",
)
_words(
    "mailbox",
    "mailbox",
    "mailboxes",
    "server",
    "side",
    "sss",
    "configuration",
    "config",
    "configured",
    "approved",
    "enabled",
    "tested",
    "settings",
    "setup",
    "set",
)
_words("check", "check", "verify", "test", "status", "ok", "okay", "correctly", "right")
_words(
    "escalate",
    "escalate",
    "escalation",
    "ticket",
    "helpdesk",
    "human",
    "person",
    "agent",
    "someone",
    "support",
    "it",
    "somebody",
)
_words(
    "talk",
    "talk",
    "speak",
    "need",
    "want",
    "open",
    "create",
    "raise",
    "file",
    "connect",
    "get",
    "send",
    "look",
    "contact",
    "like",
    "help",
)
_words(
    "help",
    "help",
    "commands",
    "command",
    "options",
    "menu",
    "usage",
    "use",
    "what",
    "how",
    "can",
    "do",
    "ask",
    "work",
    "works",
)
_words(
    "greeting",
    "hi",
    "hello",
    "hey",
    "hiya",
    "yo",
    "morning",
    "afternoon",
    "evening",
    "howdy",
    "there",
    "good",
    "bot",
    "sync",
    "doctor",
)
_words(
    "thanks",
    "thanks",
    "thank",
    "thx",
    "ty",
    "cheers",
    "great",
    "perfect",
    "awesome",
    "appreciated",
    "u",
    "you",
    "much",
    "many",
    "lot",
    "so",
    "fixed",
    "that",
    "it",
    "a",
)

_CONTRACTIONS = {
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
_PHRASES = (
    (re.compile(r"\bto[ -]?dos?\b"), " todo "),
    (re.compile(r"\bserver[ -]side[ -]sync(hronization)?\b"), " server side sss "),
    (re.compile(r"\bhelp ?desk\b"), " helpdesk "),
    (re.compile(r"\bsales ?hub\b"), " hub "),
    (re.compile(r"\baddress ?book\b"), " contacts "),
    (re.compile(r"\bcalendar (entry|item)\b"), " appointment "),
    (re.compile(r"\bset ?up\b"), " setup "),
    (re.compile(r"\bdynamics ?365\b"), " dynamics "),
    (re.compile(r"\bemail config(uration)?\b"), " mailbox configuration "),
    (re.compile(r"\bfollow[ -]?up\b"), " followup "),
)
_MAX_CHARS = 1000  # a question is short; a 10,000-character paste is judged by its start
# An @mention: `<at>Sync Doctor</at>`. The name is bounded and has no markup, so the pattern is linear: an
# unbounded `<at>.*?</at>` scans to the end from every `<at>` when none is closed (seconds on 28 KB).
MENTION = re.compile(r"<at>[^<]{0,256}</at>", re.IGNORECASE)
_VOCABULARY = sorted(_CONCEPTS)


def _collapse_repeats(word: str) -> str:
    return re.sub(r"(.)\1{2,}", r"\1\1", word)  # "apppointments" -> "appointments"


# Real words one edit from a vocabulary word: never "corrected" ("outlook is slow" is not "is show").
_NOT_TYPOS = frozenset({"slow", "slower", "main", "mall", "shop", "snow", "sink", "mask", "tack"})


def _correct(word: str) -> str:
    if word in _CONCEPTS or word in _STOP or word in _NOT_TYPOS or len(word) < 4:
        return word
    word = _collapse_repeats(word)
    if word in _CONCEPTS:
        return word
    for known in _VOCABULARY:
        # Short words are easy to mistake for each other: only fix those one edit from a long-enough word.
        if (
            len(known) >= 4
            and (len(word) >= 5 or (len(known) >= 4 and known[0] == word[0]))
            and within_one_edit(word, known)
        ):
            return known
    return word


def tokens(text: str) -> list[str]:
    """Normalised, typo-corrected words of a message (an @mention of the bot is dropped)."""
    lowered = MENTION.sub(" ", text).lower().replace("’", "'")
    for pattern, replacement in _PHRASES:
        lowered = pattern.sub(replacement, lowered)
    found: list[str] = []
    for raw in words(lowered, joins="'"):
        expanded = _CONTRACTIONS.get(raw, raw.replace("'", ""))
        found.extend(_correct(w) for w in expanded.split())
    return found


def _record_type(said: list[str]) -> RecordType | None:
    for word in said:
        for concept in _CONCEPTS.get(word, ()):
            if concept in ("appointment", "contact", "task"):
                return concept  # type: ignore[return-value]
    return None


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
    def syncing(self) -> bool:
        return self.has("sync")

    @property
    def how_to(self) -> bool:
        """'how do I create an appointment': a question about using Dynamics, not about sync."""
        joined = " ".join(self.words)
        asks_how = re.search(
            r"\bhow (do|can|to|would) (i|you|we)?\s*(create|add|make|share|book|schedule|set)\b", joined
        )
        orders = self.words[:1] in (["schedule"], ["book"], ["create"]) or joined.startswith(
            "set up a meeting"
        )
        return bool(asks_how or orders)


def _escalate(s: _Signals) -> bool:
    explicit = "ticket" in s.words or "escalate" in s.words
    wants_a_person = s.has("escalate") and (s.has("talk") or len(s.words) <= 3 or explicit)
    # "contact support" asks for a person; "my contact isn't syncing" doesn't.
    return wants_a_person and (explicit or not (s.record and s.syncing))


def _mailbox_only(s: _Signals) -> bool:
    return "mailbox" in s.words and s.record is None


def _record_problem(s: _Signals) -> bool:
    if s.record is None:
        return False
    about_sync = s.syncing or s.has("target") or (s.has("problem") and s.has("source"))
    return about_sync and (not s.how_to or (s.syncing and s.has("problem")))


def _sync_problem(s: _Signals) -> bool:
    # "calendar sync not working": no record word, but a sync complaint: appointments by default.
    pointed = s.has("target") or s.has("problem") or s.has("source")
    return s.record is None and s.syncing and pointed and "mailbox" not in s.words and not s.how_to


def _missing_from_target(s: _Signals) -> bool:
    # "why is my Quarterly review with Contoso not in Outlook": a named item (its subject, no record word)
    # said to be missing from Outlook or Exchange: an appointment by default.
    missing = any(w in _MISSING_WORDS for w in s.words)
    return s.record is None and s.has("target") and missing and "mailbox" not in s.words and not s.how_to


_MISSING_WORDS = frozenset(
    {"not", "isnt", "missing", "doesnt", "didnt", "never", "wont", "arent", "gone", "disappeared", "absent"}
)


def _mailbox_check(s: _Signals) -> bool:
    asks = s.has("check") or len(s.concepts["mailbox"]) >= 2
    return s.unknown <= 2 and ((s.has("mailbox") and asks) or ("sync" in s.words and s.has("check")))


def _record_check(s: _Signals) -> bool:
    return s.record is not None and s.has("check") and s.unknown <= 3 and not s.how_to


def _thanks(s: _Signals) -> bool:
    return s.unknown == 0 and any(w in _THANK_WORDS for w in s.words)


def _greeting(s: _Signals) -> bool:
    return s.unknown == 0 and any(w in _HELLO_WORDS for w in s.words)


def _help(s: _Signals) -> bool:
    explicit = any(w in ("help", "commands", "command", "menu", "options", "usage") for w in s.words)
    about_records = s.record is not None or s.has("target") or s.has("source")
    vague_enough = s.unknown == 0 or (explicit and s.unknown <= 1)
    return not about_records and vague_enough and any(w in _HELP_WORDS for w in s.words)


# First match wins. A diagnosis carries the record type the message names (appointment when unsaid).
_RULES: tuple[tuple[Callable[[_Signals], bool], IntentName, bool], ...] = (
    (_escalate, "escalate", False),
    (_mailbox_only, "check_mailbox", False),
    (_record_problem, "diagnose", True),
    (_sync_problem, "diagnose", True),
    (_missing_from_target, "diagnose", True),
    (_mailbox_check, "check_mailbox", False),
    (_record_check, "diagnose", True),
    (_thanks, "thanks", False),
    (_greeting, "greeting", False),
    (_help, "help", False),
)


def classify(text: str) -> Intent:
    """The intent of one chat message.

    Usage::

        classify("appt from CRM not on my calendar")  # Intent("diagnose", "appointment")
    """
    text = text[:_MAX_CHARS]
    words = tokens(text)
    if not words:  # empty, only an @mention, or only punctuation: show what the bot can do
        return Intent("help") if MENTION.sub("", text).strip(" ?!.") == "" else Intent("out_of_scope")
    signals = _Signals(
        words=words,
        concepts={c: [w for w in words if c in _CONCEPTS.get(w, ())] for c in _ALL_CONCEPTS},
        unknown=sum(1 for w in words if w not in _CONCEPTS and w not in _STOP),
        record=_record_type(words),
    )
    for rule, name, with_record in _RULES:
        if rule(signals):
            return Intent(name, (signals.record or "appointment") if with_record else None)
    return Intent("out_of_scope")


_ALL_CONCEPTS = (
    "appointment",
    "contact",
    "task",
    "sync",
    "target",
    "source",
    "problem",
    "mailbox",
    "check",
    "escalate",
    "talk",
    "help",
    "greeting",
    "thanks",
)
_THANK_WORDS = frozenset(
    {"thanks", "thank", "thx", "ty", "cheers", "appreciated", "awesome", "perfect", "great"}
)
# Words that say nothing about the intent: they don't count as "unknown" either.
_STOP = frozenset(
    {
        *(
            "a",
            "an",
            "the",
            "my",
            "me",
            "i",
            "is",
            "are",
            "am",
            "be",
            "this",
            "that",
            "it",
            "its",
            "to",
            "in",
        ),
        *(
            "on",
            "of",
            "for",
            "with",
            "and",
            "or",
            "do",
            "does",
            "did",
            "can",
            "could",
            "would",
            "please",
            "pls",
        ),
        *("you", "your", "we", "our", "there", "here", "just", "still", "again", "now", "yet", "some", "any"),
    }
)
_HELLO_WORDS = frozenset({"hi", "hello", "hey", "hiya", "yo", "morning", "afternoon", "evening", "howdy"})
_HELP_WORDS = frozenset({"help", "commands", "command", "options", "menu", "usage", "what", "how"})


_QUESTION_WORDS = frozenset(
    {
        "why",
        "what",
        "where",
        "when",
        "who",
        "how",
        "isn",
        "t",
        "not",
        "no",
        "missing",
        "from",
        "into",
        "on",
        "at",
    }
)


def is_vocabulary(word: str) -> bool:
    """True for words that belong to the question rather than to a record's subject."""
    word = word.lower()
    return (
        word in _CONCEPTS
        or word in _STOP
        or word in _QUESTION_WORDS
        or word in _CONTRACTIONS
        or _correct(word) in _CONCEPTS
    )


_MAX_SUBJECT_WORDS = 8


def subject_words(text: str) -> list[str]:
    """The words of a message that could come from a record's subject: not the question's own vocabulary.

    Usage::

        subject_words("Quartely reveiw isn't on my calendar")  # ["quartely", "reveiw"]
    """
    found = words(MENTION.sub(" ", text[:_MAX_CHARS]).lower())
    return [w for w in found if not is_vocabulary(w) and len(w) > 1][:_MAX_SUBJECT_WORDS]
