"""Exports of every list screen and every registered report to CSV, XLSX and PDF: at once when
small, as background jobs with a progress bar when large; masked as the exporter may see."""
