"""Which record does a message mean? Words from its subject, matched with typos tolerated."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.diagnosis import RecordFacts
from bot.teams.intents import MENTION, is_vocabulary

__all__ = ["best_matches", "subject_words"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def subject_words(text: str) -> list[str]:
    """The words of a message that could come from a subject: not the question's own vocabulary."""
    words = _WORD.findall(MENTION.sub(" ", text[:1000]).lower())
    return [w for w in words if not is_vocabulary(w) and len(w) > 1][:8]


def _close(a: str, b: str) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)):
        return True
    if min(len(a), len(b)) < 4 or abs(len(a) - len(b)) > 1:
        return False
    # one substitution, insertion or deletion
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _score(words: Sequence[str], subject: str) -> float:
    subject_terms = _WORD.findall(subject.lower())
    if not words or not subject_terms:
        return 0.0
    return sum(any(_close(w, s) for s in subject_terms) for w in words) / len(words)


def best_matches(
    words: Sequence[str], records: Sequence[RecordFacts], threshold: float = 0.5
) -> list[RecordFacts]:
    """The records whose subject best matches `words` (several when tied), or [] when none is close."""
    scored = [(_score(words, r.subject or ""), r) for r in records]
    top = max((score for score, _ in scored), default=0.0)
    if top < threshold:
        return []
    return [r for score, r in scored if score == top]
