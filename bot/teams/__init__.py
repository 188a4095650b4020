"""The Teams conversation: intents, the activity handler, and turning reports into cards."""
