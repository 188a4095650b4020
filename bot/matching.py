"""Words and near-misses: the one tokenizer and the one edit distance of the bot.

Who uses them: the intent vocabulary (`bot/teams/intents.py`: typo correction), the search terms sent to
Dataverse (`record_words`), and "which of these records does this person mean" (`best_matches`: the words
of a message against the subjects of their recent records; `search_words` and `one_of`: a record named
by id or by words, and which of a search's results those words mean).

Usage::

    words("Quartely review w/ Contoso!")  # ["Quartely", "review", "w", "Contoso"]
    best_matches(["quartely", "reveiw"], recent)  # the records whose subject those words name
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from bot.diagnosis import RecordFacts
from bot.errors import AmbiguousRecordError, Candidate, InputError
from bot.ids import is_id

__all__ = [
    "best_matches",
    "candidates",
    "one_of",
    "record_words",
    "search_words",
    "similar",
    "within_one_edit",
    "words",
]

_LETTERS = r"[^\W_]+"  # letters and digits of any script, no underscore
_MAX_SEARCH_WORDS = 6


@cache
def _pattern(joins: str) -> re.Pattern[str]:
    if not joins:
        return re.compile(_LETTERS)
    return re.compile(rf"{_LETTERS}(?:[{re.escape(joins)}]{_LETTERS})*")


def words(text: str, *, joins: str = "") -> list[str]:
    """The words of `text`, in order, as written: runs of letters and digits.

    A character of `joins` between two letters keeps the word whole: with `joins="'"`, "isn't" is one
    word; with `joins="'’.-"`, so are "follow-up" and "v9.2". Anything else separates words, and no
    punctuation or markup survives.
    """
    return _pattern(joins).findall(text)


def record_words(text: str) -> list[str]:
    """The words of a subject someone typed, as plain search terms (no syntax survives)."""
    return [w for w in words(text, joins="'’.-") if len(w) > 1 or w.isdigit()][:_MAX_SEARCH_WORDS]


def within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1: one letter inserted, deleted, replaced, or two neighbours swapped."""
    if a == b:
        return True
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(long_) - len(short) > 1:
        return False
    first = next((i for i, (x, y) in enumerate(zip(short, long_, strict=False)) if x != y), len(short))
    if len(short) < len(long_):  # one letter inserted
        return short[first:] == long_[first + 1 :]
    after = first + 1
    replaced = short[after:] == long_[after:]
    swapped = (
        short[first : after + 1] == long_[first : after + 1][::-1]
        and short[after + 1 :] == long_[after + 1 :]
    )
    return replaced or swapped


def similar(a: str, b: str) -> bool:
    """The same word, typos aside: equal; or, both 4+ letters long, one starts the other or is one edit off."""
    if a == b:
        return True
    if min(len(a), len(b)) < 4:
        return False
    return a.startswith(b) or b.startswith(a) or within_one_edit(a, b)


def _score(wanted: Sequence[str], subject: str) -> float:
    """The share of `wanted` (lower-case words) that the subject holds, typos aside."""
    terms = words(subject.lower())
    if not wanted or not terms:
        return 0.0
    return sum(any(similar(w, t) for t in terms) for w in wanted) / len(wanted)


def best_matches(
    wanted: Sequence[str], records: Sequence[RecordFacts], threshold: float = 0.5
) -> list[RecordFacts]:
    """The records whose subject best matches `wanted` (several when tied), or [] when none is close."""
    scored = [(_score(wanted, r.subject or ""), r) for r in records]
    top = max((score for score, _ in scored), default=0.0)
    if top < threshold:
        return []
    return [r for score, r in scored if score == top]


def search_words(record_ref: str | None) -> list[str] | None:
    """The words to search subjects for; None when the record is named by id (or not at all).

    Raises:
        InputError: the reference is neither an id nor has any word to look for.
    """
    if record_ref is None or is_id(record_ref.strip("{}")):
        return None
    found = record_words(record_ref)
    if not found:
        raise InputError(f"{record_ref!r} has no words to look for; give an id or words from the subject")
    return found


def one_of(matches: list[RecordFacts], search: list[str], record_ref: str) -> RecordFacts | None:
    """The record the search means: the only match, or the only one whose subject is exactly the words.

    Raises:
        AmbiguousRecordError: several match and none exactly; its candidates are for the person to choose.
    """
    if len(matches) <= 1:
        return matches[0] if matches else None
    wanted = " ".join(search).casefold()
    exact = [m for m in matches if " ".join(record_words(m.subject or "")).casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    raise AmbiguousRecordError(record_ref, candidates(matches))


def candidates(records: Sequence[RecordFacts]) -> tuple[Candidate, ...]:
    """The records as choices for a person: id, subject, start (ISO 8601, UTC).

    A recurring series is one choice, by its own id (the first of its instances listed gives the date),
    however many of its instances are among `records`."""
    chosen: list[Candidate] = []
    series: set[str] = set()
    for r in records:
        in_series = r.recurrence == "instance" and r.series_id is not None  # an exception is its own
        if in_series and r.series_id in series:
            continue
        if in_series and r.series_id is not None:
            series.add(r.series_id)
        chosen.append(
            Candidate(
                r.series_id if in_series and r.series_id else r.id, r.subject or "(no subject)", _iso(r)
            )
        )
    return tuple(chosen)


def _iso(record: RecordFacts) -> str | None:
    return record.start.strftime("%Y-%m-%dT%H:%M:%SZ") if record.start else None
