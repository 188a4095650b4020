"""Shared pieces of Sync Doctor's Adaptive Cards (schema 1.5, as Teams renders it).

Text that a person or Dynamics 365 wrote (subjects, names, emails, comments, notes, filter names, error
messages) must show exactly as written: a subject like `[Reset your password](https://evil.example)`
must not become a link in a card the bot posts. Teams renders markdown in a TextBlock's `text` and a
Fact's `title` and `value` (Teams' "Format cards" docs), so such text reaches a card in one of two ways:

- `plain(...)`: a RichTextBlock of one TextRun. A TextRun is never processed as markdown (Adaptive Cards
  text features: "RichTextBlock does not support Markdown"); use it for any text of its own.
- `literal(value, limit)`: where the schema has no TextRun (a Fact, an item of our own markdown list),
  the text with every character that could start markup backslash-escaped (CommonMark: any ASCII
  punctuation can be escaped), autolinks (https://x, www.x, a@b.x) broken the same way.

Both pass the text through `clip` first: one line (newlines and runs of spaces become one space) of at
most `limit` characters, ending with "…" when cut. Text that Teams never treats as markdown (a choice's
title, an input's value, a button's title or data) is only clipped. Our own text (headings, steps we
wrote, the link to Microsoft's guidance) stays markdown.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from microsoft_teams.cards.core import (
    AdaptiveCard,
    CardElement,
    ExecuteAction,
    RichTextBlock,
    TextBlock,
    TextRun,
)

__all__ = [
    "CARD_CONTENT_TYPE",
    "ERROR",
    "LINE",
    "NAME",
    "NOTE",
    "STEP",
    "SUBJECT",
    "card",
    "clip",
    "execute",
    "heading",
    "literal",
    "plain",
    "text",
    "to_dict",
]

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

# How much of a piece of outside text a card shows (in characters, the "…" included).
NAME = 80  # a person's name or email address, a filter's name
SUBJECT = 120  # an appointment's, contact's or task's subject (Dataverse allows 200)
LINE = 200  # one line of evidence or a diagnosis title
ERROR = 300  # an error message or a notice
STEP = 400  # a step of the guidance: it names the mailbox (its email address or its owner's name)
NOTE = 1000  # a person's comment or an agent's resolution note (the card's inputs take 1000)

ELLIPSIS = "…"

# What `literal` escapes: characters that start markup anywhere in a line (emphasis, links, images, code,
# strikethrough, raw HTML, autolinks `<...>`, entities, Adaptive Cards' {{DATE()}} functions), and at
# the start of a text what starts a block (headings, quotes, lists, rules, tables).
_INLINE = re.compile(r"[\\`*_~\[<{]|&(?=#?\w+;)")
_BLOCK_START = re.compile(r"^(?:[#>+=|-]|\d+(?=[.)]))")
# GFM turns https://x, www.x and a@b.x into links without any markup: break them at ":", "." or "@".
_AUTOLINK = re.compile(r":(?=//)|@|(?<=www)\.", re.IGNORECASE)


def clip(value: object, limit: int) -> str:
    """`value` as one line of at most `limit` characters: whitespace runs (newlines too) become one space,
    control characters go, and a longer text is cut and ends with "…"."""
    words = "".join(ch for ch in str(value) if unicodedata.category(ch) != "Cc" or ch.isspace()).split()
    line = " ".join(words)
    if len(line) <= limit:
        return line
    return line[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


def literal(value: object, limit: int) -> str:
    """`value` clipped to `limit`, escaped so that a TextBlock or a Fact shows it as written."""
    line = _INLINE.sub(lambda m: "\\" + m.group(), clip(value, limit))
    line = _AUTOLINK.sub(lambda m: "\\" + m.group(), line)
    start = _BLOCK_START.match(line)
    if start:  # "# x", "- x", "> x", "1. x": escape the marker (for "1." the "." after the digits)
        end = start.end()
        line = line[:end] + "\\" + line[end:] if start.group().isdigit() else "\\" + line
    return line


def plain(
    value: str,
    *,
    size: str | None = None,
    weight: str | None = None,
    color: str | None = None,
    subtle: bool = False,
    spacing: str | None = None,
) -> RichTextBlock:
    """Text shown exactly as written, never as markdown: a RichTextBlock of one TextRun (always wraps).

    `value` is one line: clip each outside piece of it to its length before putting it together.
    """
    line = clip(value, NOTE + 200)
    run = TextRun(text=line, size=size, weight=weight, color=color, is_subtle=subtle or None)  # type: ignore[arg-type]
    return RichTextBlock(inlines=[run], spacing=spacing)  # type: ignore[arg-type]


def heading(value: str, *, size: str = "Large") -> TextBlock:
    """A heading of our own words (markdown): one with outside text in it is `plain(..., weight="Bolder")`."""
    return TextBlock(text=value, size=size, weight="Bolder", wrap=True)  # type: ignore[arg-type]


def text(
    value: str, *, subtle: bool = False, color: str | None = None, spacing: str | None = None
) -> TextBlock:
    """Our own words, markdown allowed. Outside text goes in `plain` (or through `literal`)."""
    # Theme colours only ("Attention", "Good", ...): they stay readable in light, dark and high contrast.
    return TextBlock(text=value, wrap=True, is_subtle=subtle or None, color=color, spacing=spacing)  # type: ignore[arg-type]


def execute(title: str, verb: str, data: dict[str, Any], *, style: str | None = None) -> ExecuteAction:
    """A Universal Action button: Teams sends `adaptiveCard/action` and the answer replaces the card."""
    return ExecuteAction(title=title, verb=verb, data=data, style=style)  # type: ignore[arg-type]


def card(
    body: list[CardElement], actions: list[Any] | None = None, *, fallback_text: str | None = None
) -> AdaptiveCard:
    fallback = clip(fallback_text, ERROR) if fallback_text else None
    return AdaptiveCard(version="1.5", body=body, actions=actions or None, fallback_text=fallback)


def to_dict(model: AdaptiveCard) -> dict[str, Any]:
    """The card as the JSON Teams receives (camelCase, no nulls, with the schema URL)."""
    return {"$schema": SCHEMA, **model.model_dump(exclude_none=True, by_alias=True)}
