"""The campaigns' background work: sending one campaign (enqueued when it is scheduled for
now), and the sweep that starts campaigns whose time has come and resumes any a dead worker
left half-sent. Each batch is one transaction; a second run sends nobody twice."""

from __future__ import annotations

import logging

from app.campaigns.services import due_campaigns, run_campaign

log = logging.getLogger(__name__)


def send_campaign(campaign_id: int) -> dict:
    result = run_campaign(campaign_id)
    log.info("campaign %s: %s", campaign_id, result)
    return result


def send_due_campaigns() -> dict[int, dict]:
    return {campaign_id: send_campaign(campaign_id) for campaign_id in due_campaigns()}
