"""Reads that may be served by a read replica: dashboards and exports.

With ``CRM_READ_REPLICA_URL`` set, the app gets a second engine (the Flask-SQLAlchemy bind
``crm_replica``) and every plain SELECT made through ``db.session`` inside ``replica_reads()``
goes there; everything else stays on the primary: writes, flushes, ``SELECT ... FOR UPDATE``,
``session.connection()`` (the audit chain and the summary tables use it) and every read outside
the block. Row scoping applies as before: it rewrites the statement, whichever engine runs it.

A replica lags its primary by its replication delay, so only reads that tolerate a few seconds
of staleness are routed: the dashboard figures, report builds and the rows of an export. Lists,
detail pages and every workflow read the primary, so a user always sees their own change.
Without the setting ``replica_reads()`` does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.sql.selectable import CompoundSelect, Select

REPLICA_BIND = "crm_replica"
_ROUTED = "crm.replica_reads"


def replica_binds(config: dict[str, Any]) -> None:
    """Add the replica's engine to ``SQLALCHEMY_BINDS`` when ``CRM_READ_REPLICA_URL`` is set
    (before ``db.init_app``)."""
    from config import database_url

    url = config.get("CRM_READ_REPLICA_URL")
    if url:
        binds = dict(config.get("SQLALCHEMY_BINDS") or {})
        binds[REPLICA_BIND] = database_url(url)
        config["SQLALCHEMY_BINDS"] = binds


def _plain_read(clause: Any) -> bool:
    if isinstance(clause, CompoundSelect):
        return True
    return isinstance(clause, Select) and clause._for_update_arg is None


class RoutingSession(FlaskSession):
    """The app's session: the primary, except for plain reads inside ``replica_reads()``."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):  # type: ignore[override]
        if (
            bind is None
            and self.info.get(_ROUTED)
            and not self._flushing
            and _plain_read(clause)
            and REPLICA_BIND in self._db.engines
        ):
            return self._db.engines[REPLICA_BIND]
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Route the plain reads made in the block to the read replica, if there is one."""
    from app.extensions import db

    session = db.session()
    before = session.info.get(_ROUTED, False)
    session.info[_ROUTED] = True
    try:
        yield
    finally:
        session.info[_ROUTED] = before


def has_replica() -> bool:
    from app.extensions import db

    return REPLICA_BIND in db.engines
