"""Every plain-text answer the bot gives, in one place."""

from __future__ import annotations

__all__ = [
    "ATTACHMENTS_ONLY",
    "ESCALATE_SOON",
    "NOT_YOURS",
    "NO_IDENTITY",
    "OUT_OF_SCOPE",
    "SOMETHING_WRONG",
    "TENANT_REFUSED",
    "THANKS",
    "UNKNOWN_ACTION",
]

OUT_OF_SCOPE = (
    "I can only help with Dynamics 365 records that don't show up in Outlook: appointments, contacts and tasks. "
    "Try “Why isn't my appointment in Outlook?”, or type **help**."
)
THANKS = "You're welcome! If something else doesn't show up in Outlook, just ask."
ATTACHMENTS_ONLY = "I can only read text. Tell me what's missing from Outlook, for example “my appointment isn't in Outlook”."
NO_IDENTITY = (
    "I can't tell which Microsoft 365 account you're using here, so I can't look up your Dynamics 365 user. "
    "Try again from Microsoft Teams signed in with your work account."
)
TENANT_REFUSED = "Sorry, Sync Doctor isn't set up for your organization. Ask your Microsoft 365 admin."
NOT_YOURS = "That check belongs to someone else, so I can't run it for you. Ask me about your own records."
UNKNOWN_ACTION = "I don't know that button any more. Ask me again in your own words."
ESCALATE_SOON = (
    "Escalating to the helpdesk from here is coming soon. Until then, share this card with your helpdesk: "
    "it has everything they need."
)
SOMETHING_WRONG = "Sorry, something went wrong on my side. Please try again in a minute."
