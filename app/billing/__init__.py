"""Billing desk: products and services, quotations, invoices, payments and contracts."""
