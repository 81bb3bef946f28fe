"""Communication: the notification outbox, channels, message log and preferences."""
