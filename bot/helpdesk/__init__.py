"""Escalations: tickets and their rules, the helpdesk channel, agents' actions, and how the helpdesk's
outbox messages are sent (ticket cards, ticket news, the sweep's digest)."""
