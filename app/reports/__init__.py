"""Tabular reports: each desk registers what it can report on; exports, PDFs and scheduled
report e-mails work from the registry, whatever the report."""
