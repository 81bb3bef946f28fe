"""Periodic jobs of the leads desk."""

from __future__ import annotations

from flask import current_app

from app.leads.scoring import rescore_recently_engaged
from app.leads.services import anonymise_lost_leads


def apply_retention() -> int:
    """Anonymise lost leads older than the retention period (CRM_RETENTION_LOST_LEAD_DAYS)."""
    return anonymise_lost_leads(
        int(current_app.config.get("CRM_RETENTION_LOST_LEAD_DAYS", 7 * 365))
    )


def rescore_leads() -> int:
    """Nightly re-scoring for recency (scores change on their own as interactions age)."""
    return rescore_recently_engaged()


def sweep_follow_ups() -> dict:
    """Follow-up reminders and tasks for missed follow-ups (every few minutes)."""
    from app.leads.follow_ups import sweep_follow_ups as sweep

    return sweep()
