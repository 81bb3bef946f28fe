"""The navbar's global search: leads, clients and invoices by name, e-mail, phone or number."""
