"""Entry point: `flask --app run ...` finds `app`; `python run.py` serves it on 127.0.0.1:8080.

Served this way with no REDIS_URL (the embedded default), periodic jobs (outbox dispatch,
reminders, digests, retention) run in a background thread of this process.
"""

from __future__ import annotations

import os

from app import create_app

app = create_app()

if __name__ == "__main__":
    if not app.config.get("REDIS_URL") and app.config.get("CRM_INPROCESS_SCHEDULER"):
        from app.core.scheduler import InlineScheduler

        InlineScheduler(app).start()
        print("periodic jobs run in this process (no REDIS_URL)")
    app.run(
        host=os.environ.get("CRM_HOST", "127.0.0.1"),
        port=int(os.environ.get("CRM_PORT", "8080")),
        debug=False,
    )
