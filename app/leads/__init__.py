"""Leads and their interactions."""
