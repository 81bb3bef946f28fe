"""Accounts, journal entries and their lines. Entries are written once and never changed: a
mistake is corrected by a reversing entry (``reverses_id``), so the history stays complete."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.errors import ConflictError
from app.core.types import UTCDateTime, utcnow
from app.leads.models import _one_of

ACCOUNT_CLASSES = ("asset", "liability", "equity", "income", "expense")
Money = Numeric(18, 2)


class Account(Model):
    __tablename__ = "ledger_account"
    __table_args__ = (
        CheckConstraint(_one_of("account_class", ACCOUNT_CLASSES), name="ck_ledger_account_class"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    account_class: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.code} {self.name}"


class JournalEntry(Model):
    __tablename__ = "journal_entry"
    __table_args__ = (
        Index("ix_journal_entry_source", "source_type", "source_id"),
        Index("ix_journal_entry_date", "entry_date", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_date: Mapped[date] = mapped_column(Date)
    memo: Mapped[str] = mapped_column(String(300))
    source_type: Mapped[str | None] = mapped_column(String(40))
    """The table of the record that caused the entry (``loan_application``, ``loan_fee``...)."""
    source_id: Mapped[int | None] = mapped_column(Integer)
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entry.id", name="fk_journal_entry_reverses"), unique=True
    )
    """The entry this one cancels; an entry is reversed at most once."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[JournalLine]] = relationship(
        back_populates="entry", order_by="JournalLine.id", cascade="save-update, merge"
    )
    reverses: Mapped[JournalEntry | None] = relationship(remote_side=[id])
    created_by: Mapped[User | None] = relationship(User)

    @property
    def total(self) -> Decimal:
        return sum((line.debit for line in self.lines), Decimal("0.00"))

    def __repr__(self) -> str:
        return f"JE-{self.id} {self.memo}"


class JournalLine(Model):
    __tablename__ = "journal_line"
    __table_args__ = (
        CheckConstraint("debit >= 0 AND credit >= 0", name="ck_journal_line_positive"),
        CheckConstraint(
            "(debit > 0 AND credit = 0) OR (credit > 0 AND debit = 0)",
            name="ck_journal_line_one_side",
        ),
        Index("ix_journal_line_account", "account_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entry.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_account.id"))
    debit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    credit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))

    entry: Mapped[JournalEntry] = relationship(back_populates="lines")
    account: Mapped[Account] = relationship(Account)

    def __repr__(self) -> str:
        return f"{self.account}: Dr {self.debit} Cr {self.credit}"


def _refuse_change(mapper, connection, target) -> None:
    raise ConflictError(
        "journal entries are never changed or deleted; post a reversing entry instead."
    )


for _model in (JournalEntry, JournalLine):
    event.listen(_model, "before_update", _refuse_change)
    event.listen(_model, "before_delete", _refuse_change)
