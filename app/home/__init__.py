"""The home page: each member of staff's work for today, by role."""
