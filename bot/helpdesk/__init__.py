"""Escalations: tickets, the helpdesk channel, and delivering their messages through a durable outbox."""
