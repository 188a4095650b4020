"""Every plain-text answer the bot gives, in one place."""

from __future__ import annotations

__all__ = [
    "AGENTS_ONLY",
    "AGENTS_OR_OWNERS_ONLY",
    "ATTACHMENTS_ONLY",
    "BACKEND_DOWN",
    "CHANNEL_SET",
    "CONVERSATION_NOT_KEPT",
    "ESCALATED",
    "ESCALATED_NO_CHANNEL",
    "ESCALATE_SOON",
    "FIXES_OFF",
    "FIX_AGENT_DONE",
    "FIX_AGENT_REFUSED",
    "FIX_ASK_ADMIN",
    "FIX_NOT_APPLICABLE",
    "FIX_REFUSED_ESCALATED",
    "FIX_REFUSED_NO_CHANNEL",
    "FIX_REFUSED_OPEN_ALREADY",
    "FIX_REFUSED_TICKET",
    "FIX_SLOW",
    "FIX_UNDO_NOTHING",
    "MUTED",
    "NOT_A_SYNCED_TABLE",
    "NOT_YOURS",
    "NO_IDENTITY",
    "ONLY_YOURSELF",
    "OUT_OF_SCOPE",
    "SET_CHANNEL_IN_A_CHANNEL",
    "SIGN_IN_DOWN",
    "SIGN_IN_REFUSED",
    "SOMETHING_WRONG",
    "STORE_DOWN",
    "TENANT_REFUSED",
    "THANKS",
    "THROTTLED",
    "TICKET_NOT_SAVED",
    "TICKET_OPEN_ALREADY",
    "TICKET_UNCONFIRMED",
    "TOO_MANY_TICKETS",
    "UNKNOWN_ACTION",
    "WATCHING",
]

OUT_OF_SCOPE = (
    "I can only help with Dynamics 365 records that don't show up in Outlook: appointments, contacts and tasks. "
    "Try “Why isn't my appointment in Outlook?”, or type **help**."
)
NOT_A_SYNCED_TABLE = (
    "That link is to a Dynamics 365 {table}. Server-side synchronization brings appointments, contacts and "
    "tasks to Outlook, so those are what I can check: paste the link of one of them."
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
TICKET_CLOSED_FIX = "{key} is resolved, so I changed nothing. Reopen it to make a fix."
ESCALATE_SOON = (
    "Escalating to the helpdesk from here is coming soon. Until then, share this card with your helpdesk: "
    "it has everything they need."
)
SOMETHING_WRONG = "Sorry, something went wrong on my side. Please try again in a minute."

AGENTS_ONLY = (
    "Only helpdesk agents can do that. Ask your admin to add you to HELPDESK_AGENTS if you should be one."
)
ONLY_YOURSELF = "I can only diagnose your own records for you. Helpdesk agents can diagnose other people."
SET_CHANNEL_IN_A_CHANNEL = "Say that in the team channel the helpdesk should use, and @mention me there."
CHANNEL_SET = (
    "This channel now gets Sync Doctor tickets: each in its own thread, with the diagnosis attached."
)
ESCALATED = "Ticket {key} is with the helpdesk. I'll tell you here when it's assigned or resolved."
ESCALATED_NO_CHANNEL = (
    "I've kept your ticket {key}, but no helpdesk channel is set up yet, so nobody has seen it. "
    "Your admin has been told how to set one up; it will be posted as soon as there is one."
)
AGENTS_OR_OWNERS_ONLY = (
    "Only helpdesk agents (HELPDESK_AGENTS) or the team's owners can choose the helpdesk channel."
)
WATCHING = "OK: I'll check again with each sweep and tell you here once it's fixed."
MUTED = "OK: I won't send you these sync notices any more. You can still ask me anytime."
TICKET_OPEN_ALREADY = (
    "You already have {key} open about this, and the helpdesk has it. I'll tell you here when it moves."
)
TOO_MANY_TICKETS = (
    "You already have {count} open tickets. Please wait for the helpdesk to answer those before opening "
    "another (“my tickets” lists them)."
)
TICKET_NOT_SAVED = (
    "I couldn't save your ticket: the helpdesk's storage isn't answering. Please try again in a few minutes, "
    "or contact your helpdesk another way."
)
TICKET_UNCONFIRMED = (
    "The helpdesk's storage is slow to answer, so I can't confirm that your ticket was saved. "
    "Ask “my tickets” in a few minutes before you try again."
)
STORE_DOWN = (
    "I can't reach my storage right now, so I couldn't do that. Diagnoses still work: ask me why something "
    "isn't in Outlook. Please try the rest again in a few minutes."
)
CONVERSATION_NOT_KEPT = (
    "(My storage isn't answering, so I couldn't remember this chat: until it is back, I can't message you "
    "here on my own about sync problems.)"
)

# One-click fixes.
FIXES_OFF = "One-click fixes aren't set up here. The card's steps say how to make the change yourself."
FIX_NOT_APPLICABLE = "That fix doesn't apply any more, so I changed nothing. Here is what I see now."
FIX_UNDO_NOTHING = "There's nothing to undo: that fix isn't in place (it was undone already, or never made)."
FIX_REFUSED_ESCALATED = "Your organization doesn't let you change this; I've told the helpdesk: ticket {key}."
FIX_REFUSED_NO_CHANNEL = (
    "Your organization doesn't let you change this; I've kept ticket {key} for the helpdesk, which will "
    "see it once its channel is set up."
)
FIX_REFUSED_OPEN_ALREADY = (
    "Your organization doesn't let you change this; the helpdesk has it already in {key}."
)
FIX_REFUSED_TICKET = "I pressed Fix it for me ({title}), and Dynamics 365 refused it: {detail}"
FIX_SLOW = "Dynamics 365 didn't answer in time."
FIX_ASK_ADMIN = "Ask your Dynamics 365 admin to make this change, or to give you the privilege it names."
FIX_AGENT_DONE = (
    "Done: {title}. I'll check again after the next sync, in {when}, and tell {person} how it went."
)
FIX_AGENT_REFUSED = "Dynamics 365 refused it ({title}): {detail}"

# Why a diagnosis couldn't run (the checklist card's reason): whose fault, and when to try again.
THROTTLED = "{service} asked Sync Doctor to slow down (too many requests). Please try again{when}."
SIGN_IN_REFUSED = (
    "Sign-in to Dynamics 365 failed for Sync Doctor itself; your admin has to fix its configuration."
)
SIGN_IN_DOWN = "Microsoft sign-in isn't answering Sync Doctor right now. Please try again in a few minutes."
BACKEND_DOWN = "{service} didn't answer in time or refused ({error})."
