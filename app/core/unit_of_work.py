"""Helpers for services that check a record before it is saved."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def without_autoflush(func: F) -> F:
    """Run a preparation step without autoflush, so the queries it makes while checking a record
    never write the half-checked record (one change = one flush = one audit row)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from app.extensions import db

        with db.session.no_autoflush:
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
