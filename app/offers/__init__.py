"""Offers desk: rule-based personalised offers sent as client notifications."""
