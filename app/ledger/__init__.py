"""The double-entry ledger (DOMAIN section 9): accounts, balanced journal entries, reversals."""
