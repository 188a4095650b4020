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

Conventions Teams users expect (tests/teams/test_cards.py checks them on every card):

- Times: `local_time(iso)` writes Teams' `{{DATE(iso, SHORT)}}`/`{{TIME(iso)}}`, which each client shows in
  its own person's time zone and format. They work in a TextBlock's text only (Adaptive Cards "Text
  features"), so a time goes in a `text(...)` line, never in a Fact, a TextRun or a choice's title; where
  no TextBlock can hold it (a choice), `utc_time(iso)` spells it out with "UTC". fallbackText stays plain.
- Headings: `heading(...)`, a TextBlock with AC 1.5 `style: "heading"` (screen readers announce it).
- Size: a card's JSON is at most `MAX_CARD_BYTES` (`card_size`): Teams takes about 28 KB per message, the
  activity around the card included; a card that could outgrow it leaves details out to fit.
- Buttons: at most `MAX_VISIBLE_ACTIONS` shown, each title short enough not to be cut at Teams mobile's
  ~320 px (`TITLE_LIMIT`, by how many share the row); the full words go in `tooltip`, extras in the
  overflow menu (`mode: "secondary"`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from microsoft_teams.cards.core import (
    AdaptiveCard,
    CardElement,
    ExecuteAction,
    RefreshDefinition,
    RichTextBlock,
    TextBlock,
    TextRun,
)

__all__ = [
    "CARD_CONTENT_TYPE",
    "ERROR",
    "LINE",
    "MAX_CARD_BYTES",
    "MAX_REFRESH_USERS",
    "MAX_VISIBLE_ACTIONS",
    "NAME",
    "NOTE",
    "STEP",
    "SUBJECT",
    "TITLE_LIMIT",
    "card",
    "card_size",
    "clip",
    "execute",
    "heading",
    "iso",
    "literal",
    "local_time",
    "plain",
    "refresh",
    "text",
    "to_dict",
    "utc_time",
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

# Buttons on Teams mobile (~320 px wide) share one row: a longer title is cut ("Re-..."). Characters a
# visible button's title may have, by how many buttons are shown; the rest go in the overflow menu.
MAX_VISIBLE_ACTIONS = 3
TITLE_LIMIT = {1: 24, 2: 16, 3: 10}
MAX_REFRESH_USERS = 60  # Universal Actions: at most 60 userIds get the automatic refresh
# A card's JSON, at most (`card_size`): Teams refuses a message over about 28 KB, and the activity that
# carries the card (ids, service URL, channel data) takes some of it.
MAX_CARD_BYTES = 24_000

# What Teams' {{DATE()}}/{{TIME()}} take: RFC 3339 with seconds, in UTC ("Z") or with an offset.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})")

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
    """A heading (AC 1.5 `style: "heading"`): our own words, markdown; outside text in it goes through
    `literal`."""
    return TextBlock(text=value, size=size, weight="Bolder", wrap=True, style="heading")  # type: ignore[arg-type]


def iso(value: datetime | str | None) -> str | None:
    """`value` as the RFC 3339 time Teams' DATE()/TIME() take ("2026-11-25T18:00:00Z"), or None when it is
    no such time (outside text that only looks like one is never put in a function)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not isinstance(value, str) or not _ISO.fullmatch(value):
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def local_time(value: datetime | str | None, *, date: str = "SHORT") -> str | None:
    """The time as each reader's Teams shows it, in their time zone: "{{DATE(t, SHORT)}}, {{TIME(t)}}"
    (`date`: COMPACT, SHORT or LONG). Only for a TextBlock's text. None when `value` is no time."""
    moment = iso(value)
    return None if moment is None else f"{{{{DATE({moment}, {date})}}}}, {{{{TIME({moment})}}}}"


def utc_time(value: datetime | str | None) -> str | None:
    """The time spelled out in UTC ("Fri 27 Nov 2026, 15:00 UTC"), where Teams' DATE()/TIME() can't go
    (a choice's title, fallbackText). None when `value` is no time."""
    moment = iso(value)
    if moment is None:
        return None
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(UTC)
    return parsed.strftime("%a %d %b %Y, %H:%M UTC")


def text(
    value: str, *, subtle: bool = False, color: str | None = None, spacing: str | None = None
) -> TextBlock:
    """Our own words, markdown allowed. Outside text goes in `plain` (or through `literal`)."""
    # Theme colours only ("Attention", "Good", ...): they stay readable in light, dark and high contrast.
    return TextBlock(text=value, wrap=True, is_subtle=subtle or None, color=color, spacing=spacing)  # type: ignore[arg-type]


def execute(
    title: str,
    verb: str,
    data: dict[str, Any],
    *,
    style: str | None = None,
    tooltip: str | None = None,
    secondary: bool = False,
) -> ExecuteAction:
    """A Universal Action button: Teams sends `adaptiveCard/action` and the answer replaces the card.

    `title` is short (see `TITLE_LIMIT`); `tooltip` says it in full (shown on hover, read by screen
    readers); `secondary` puts it in the card's overflow menu (AC 1.5 `mode: "secondary"`).
    """
    mode = "secondary" if secondary else None
    return ExecuteAction(title=title, verb=verb, data=data, style=style, tooltip=tooltip, mode=mode)  # type: ignore[arg-type]


def refresh(verb: str, data: dict[str, Any], user_ids: list[str]) -> RefreshDefinition:
    """Universal Actions' `refresh`: Teams asks the bot (an `adaptiveCard/action` invoke with `trigger:
    "automatic"`) for the card of each of `user_ids` (Teams user MRIs, at most 60) when they see it;
    everyone else sees the card as sent, and may refresh it by hand (the message's "Refresh card")."""
    action = ExecuteAction(title="Refresh", verb=verb, data=data)
    return RefreshDefinition(action=action, user_ids=list(user_ids[:MAX_REFRESH_USERS]))


def card(
    body: list[CardElement],
    actions: list[Any] | None = None,
    *,
    fallback_text: str | None = None,
    refresh: RefreshDefinition | None = None,
) -> AdaptiveCard:
    fallback = clip(fallback_text, ERROR) if fallback_text else None
    return AdaptiveCard(
        version="1.5", body=body, actions=actions or None, fallback_text=fallback, refresh=refresh
    )


def to_dict(model: AdaptiveCard) -> dict[str, Any]:
    """The card as the JSON Teams receives (camelCase, no nulls, with the schema URL)."""
    return {"$schema": SCHEMA, **model.model_dump(exclude_none=True, by_alias=True)}


def card_size(model: AdaptiveCard) -> int:
    """The bytes of the card's JSON on the wire, at most: ASCII-escaped as Python's json writes it (a
    character outside ASCII takes up to 12 bytes, "\\ud83d\\ude00")."""
    return len(json.dumps(to_dict(model)))
