"""What catalog announces: nothing yet. Its outbox exists so that the first
event it publishes leaves the way every other event does."""
