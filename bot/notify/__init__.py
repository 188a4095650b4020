"""Proactive notifications: find people whose mailbox can't sync before they notice, and tell each once.
`outbox/` delivers what is queued (for the helpdesk too); `preferences` keeps who muted or watches."""
