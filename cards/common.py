"""Shared pieces of Sync Doctor's Adaptive Cards (schema 1.5, as Teams renders it)."""

from __future__ import annotations

from typing import Any

from microsoft_teams.cards.core import AdaptiveCard, CardElement, ExecuteAction, TextBlock

__all__ = ["CARD_CONTENT_TYPE", "card", "execute", "heading", "text", "to_dict"]

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


def heading(value: str, *, size: str = "Large") -> TextBlock:
    return TextBlock(text=value, size=size, weight="Bolder", wrap=True)  # type: ignore[arg-type]


def text(
    value: str, *, subtle: bool = False, color: str | None = None, spacing: str | None = None
) -> TextBlock:
    # Theme colours only ("Attention", "Good", ...): they stay readable in light, dark and high contrast.
    return TextBlock(text=value, wrap=True, is_subtle=subtle or None, color=color, spacing=spacing)  # type: ignore[arg-type]


def execute(title: str, verb: str, data: dict[str, Any], *, style: str | None = None) -> ExecuteAction:
    """A Universal Action button: Teams sends `adaptiveCard/action` and the answer replaces the card."""
    return ExecuteAction(title=title, verb=verb, data=data, style=style)  # type: ignore[arg-type]


def card(
    body: list[CardElement], actions: list[Any] | None = None, *, fallback_text: str | None = None
) -> AdaptiveCard:
    return AdaptiveCard(version="1.5", body=body, actions=actions or None, fallback_text=fallback_text)


def to_dict(model: AdaptiveCard) -> dict[str, Any]:
    """The card as the JSON Teams receives (camelCase, no nulls, with the schema URL)."""
    return {"$schema": SCHEMA, **model.model_dump(exclude_none=True, by_alias=True)}
