"""Proactive notifications: find people whose mailbox can't sync before they notice, and tell each once."""
