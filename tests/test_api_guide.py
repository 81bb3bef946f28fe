"""The API guide (docs/api.md) runs: every shell block, in order, against a live
server on a demo-seeded database (so the guide cannot rot)."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.core.demo import seed_demo
from app.extensions import db
from tests.support import build_app, prepare_schema

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
DOCUMENTED_BASE = "http://127.0.0.1:8080"


def guide_script() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6, "the guide lost its examples"
    return "\n".join(blocks)


@pytest.fixture
def live_demo_server(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'guide.db'}")
    prepare_schema(app)
    with app.app_context():
        assert seed_demo(lead_count=20) is not None
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_the_guides_curl_examples_run_against_a_demo_server(live_demo_server):
    script = guide_script()
    assert DOCUMENTED_BASE in script
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(DOCUMENTED_BASE, live_demo_server)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    out = run.stdout
    assert re.search(r"@example\.com", out) and "Asha.Rao" not in out  # stored lower-case
    assert '"client_id"' in out  # the conversion's answer
    assert '"principal"' in out and '"interest"' in out  # the repayment's allocation
    assert re.search(r'"email":\s*\[', out) and "\n422\n" in out  # the error shape
    assert "already converted" in out.lower() or "\n409\n" in out
    assert "\n401\n" in out  # the revoked key
    assert "cannot move to closed" in out  # the support case's refused move, with the allowed
    assert out.rstrip().endswith("\n1")  # the case, taken, is in my queue
