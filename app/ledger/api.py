"""Ledger API (read-only): the chart of accounts, journal entries and their lines. Entries are
posted by the desks and never edited; a mistake is cancelled by a reversing entry."""

from __future__ import annotations

from app.core.crud import CrmSQLAInterface, ReadOnlyRestApi, readable_columns
from app.ledger.models import Account, JournalEntry, JournalLine
from app.ledger.views import LEDGER_PERMISSIONS


class AccountApi(ReadOnlyRestApi):
    resource_name = "account"
    datamodel = CrmSQLAInterface(Account)
    class_permission_name = "Ledger"
    base_permissions = LEDGER_PERMISSIONS
    list_columns = show_columns = readable_columns(Account)
    search_columns = ["code", "name", "account_class", "currency", "active"]
    order_columns = ["id", "code", "name"]
    base_order = ("code", "asc")


class JournalEntryApi(ReadOnlyRestApi):
    resource_name = "journalentry"
    datamodel = CrmSQLAInterface(JournalEntry)
    class_permission_name = "Ledger"
    base_permissions = LEDGER_PERMISSIONS
    list_columns = show_columns = readable_columns(JournalEntry)
    search_columns = ["entry_date", "memo", "source_type", "source_id", "reverses_id"]
    order_columns = ["id", "entry_date"]
    base_order = ("id", "desc")


class JournalLineApi(ReadOnlyRestApi):
    resource_name = "journalline"
    datamodel = CrmSQLAInterface(JournalLine)
    class_permission_name = "Ledger"
    base_permissions = LEDGER_PERMISSIONS
    list_columns = show_columns = readable_columns(JournalLine)
    search_columns = ["entry_id", "account_id"]
    order_columns = ["id", "entry_id"]
