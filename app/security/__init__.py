"""Roles as data, the security manager and row scoping."""
