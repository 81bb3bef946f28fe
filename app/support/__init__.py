"""Support cases: a client's request, its conversation, its SLA and who works it."""
