"""Sync Doctor: diagnoses why Dynamics 365 appointments, contacts and tasks don't reach Exchange."""
