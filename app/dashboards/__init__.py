"""Dashboards per audience (sales, compliance, lending, brokerage, billing, forex).

Every figure is one SQL aggregate made through the ORM session, so the caller's row scoping
applies; every bar links to the list behind it with the same filters, and every chart's table is
a registered report (``app.reports.registry``) that exports with the same filters.
"""
