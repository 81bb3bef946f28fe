"""Clients: individuals and companies the desks serve."""
