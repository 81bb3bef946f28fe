"""Indexes the dashboards' filters need on the desks' tables (migration 0015).

Declared here, beside the queries that use them, so the models' metadata (and ``flask db
check``) knows them: applications are counted by when they were created, exchanges by status and
when they were executed.
"""

from __future__ import annotations

from sqlalchemy import Index

from app.forex.models import FxExchange
from app.lending.models import LoanApplication

INDEXES = (
    Index("ix_loan_application_created", LoanApplication.created_at),
    Index("ix_fx_exchange_status_executed", FxExchange.status, FxExchange.executed_at),
)
