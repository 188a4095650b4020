"""The Teams conversation: activities in, cards out. It converts and routes; the services decide.

- `bot`: the activity handler (`SyncDoctorBot`), wiring the tables below.
- `routes`: intent -> reply (`ROUTES`); `intents`: what a message asks, and the words that may name a record.
- `commands`: the helpdesk's exact commands ("my tickets", "use this channel for helpdesk").
- `actions`: card verb -> (typed payload from `payloads`, handler) (`ACTIONS`), and their one dispatcher.
- `diagnoses`, `escalations`: asking the diagnosis and helpdesk services, and the card for their answer.
- `fixes`: one-click fixes (Fix it for me, an agent's Fix, Confirm, Undo), through the fix service.
- `references`: each person's 1:1 conversation, kept through the helpdesk service.
- `turn`: who and where a turn is from, and the `Services` a handler may call.
- `envelope`: the HTTP boundary's checks of an activity; `messages`: every plain-text answer.
"""
