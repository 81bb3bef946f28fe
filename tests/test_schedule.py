"""Periodic work: the schedule's arithmetic, the embedded scheduler thread, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.audit.models import AuditLog
from app.core.schedule import PERIODIC_JOBS, PeriodicJob
from app.core.scheduler import InlineScheduler, next_slot, run_id
from app.extensions import db
from app.leads.models import Lead
from tests.support import make_branch, make_lead, make_staff


def test_slots_are_aligned_and_ids_fixed():
    daily = PeriodicJob("x", "m.f", 86400, offset_seconds=7 * 3600)
    noon = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()
    slot, start = next_slot(daily, noon)
    assert start == datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    assert next_slot(daily, noon + 60) == (slot, start)  # same slot, same id: no doubles
    assert run_id(daily, slot) == f"periodic__x__{slot}"


def test_every_periodic_job_points_at_a_real_function():
    import importlib

    for job in PERIODIC_JOBS:
        module, _, name = job.func.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), job.func


def test_embedded_scheduler_runs_due_jobs_once_per_slot(app, monkeypatch):
    calls = []
    monkeypatch.setattr("app.core.scheduler.run_job", lambda func: calls.append(func))
    # A fixed start (not the wall clock), so the slots the test steps through are known.
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()
    scheduler = InlineScheduler(app, started_at=now)
    assert set(scheduler.run_due(now)) == {job.name for job in PERIODIC_JOBS}
    assert scheduler.run_due(now + 1) == []
    # the jobs due every minute: the outbox, the folding of the summaries, due campaigns
    assert sorted(scheduler.run_due(now + 61)) == [
        "campaigns-due",
        "compact-summaries",
        "dispatch-outbox",
    ]
    assert calls.count("app.comms.jobs.dispatch_outbox") == 2


def test_retention_anonymises_only_old_lost_leads(app):
    agent = make_staff("Agent", make_branch())
    old = make_lead(agent, first_name="Old", status="new")
    recent = make_lead(agent, first_name="Recent")
    db.session.commit()
    for lead in (old, recent):
        lead.status, lead.lost_reason = "lost", "went elsewhere"
    db.session.commit()
    long_ago = datetime.now(UTC) - timedelta(days=3000)
    db.session.execute(
        text("UPDATE lead SET updated_at = :t WHERE id = :id"),
        {"t": long_ago.replace(tzinfo=None), "id": old.id},
    )
    db.session.commit()

    from app.leads.jobs import apply_retention

    assert apply_retention() == 1
    db.session.expire_all()
    old_row, recent_row = db.session.get(Lead, old.id), db.session.get(Lead, recent.id)
    assert (old_row.first_name, old_row.email, old_row.phone) == ("Anonymised", None, None)
    assert recent_row.first_name == "Recent" and recent_row.email
    event = (
        db.session.query(AuditLog)
        .filter_by(action="retention")
        .order_by(AuditLog.seq.desc())
        .first()
    )
    assert "1 lost lead(s) anonymised" in event.detail
    assert apply_retention() == 0
