"""Marketing campaigns: saved segments, campaigns sent through the outbox, unsubscribe links, attribution."""
