"""Entry point: `flask --app run ...` finds `app`; `python run.py` serves it on 127.0.0.1:8080."""

from __future__ import annotations

import os

from app import create_app

app = create_app()

if __name__ == "__main__":
    app.run(
        host=os.environ.get("CRM_HOST", "127.0.0.1"),
        port=int(os.environ.get("CRM_PORT", "8080")),
        debug=False,
    )
