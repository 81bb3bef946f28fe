"""Branches and staff profiles."""
