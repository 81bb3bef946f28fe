"""Backups: a PostgreSQL (and a SQLite) database with documents is backed up into one encrypted
archive and restored into an empty database and an empty bucket, everything verified; damaged,
truncated and wrong-key archives, and non-empty targets, are refused with nothing written."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from app.clients.models import Client
from app.clients.services import prepare_client
from app.core import backup
from app.core.cli import crm_cli
from app.documents.services import find_owner, upload_document
from app.extensions import db
from app.security.scoping import Actor
from tests.billing_support import make_invoice
from tests.s3_server import aws_test_credentials, moto_s3_server
from tests.support import (
    build_app,
    make_branch,
    make_lead,
    make_staff,
    prepare_schema,
    temporary_postgres_database,
)

PAN = "ABCPE1234F"
PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A migrated PostgreSQL database of its own, with rows on several desks and documents."""
    with temporary_postgres_database() as url:
        app = build_app(url, CRM_BACKUP_KEY=KEY)
        prepare_schema(app)
        with app.app_context():
            branch = make_branch(tz="UTC")
            agent = make_staff("Agent", branch)
            actor = Actor(agent.user_id, frozenset({"Agent"}), branch.id, agent.user.username)
            for _ in range(3):
                make_lead(agent)
            client = prepare_client(
                Client(
                    name="Asha Verma",
                    branch_id=branch.id,
                    relationship_manager_id=agent.user_id,
                    pan=PAN,
                )
            )
            db.session.add(client)
            db.session.flush()
            make_invoice(client)
            db.session.commit()
            owner = find_owner(client_id=client.id)
            upload_document(owner, "pan_card", "pan.pdf", PDF, actor=actor)
            db.session.commit()
            upload_document(owner, "pan_card", "pan-2.pdf", PDF + b"% v2\n", actor=actor)
            db.session.commit()
            app.client_id = client.id
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def invoke(app, *args):
    from flask.cli import ScriptInfo

    return CliRunner().invoke(crm_cli, list(args), obj=ScriptInfo(create_app=lambda: app))


@pytest.fixture
def target(s3_endpoint, monkeypatch):
    """An empty PostgreSQL database (no schema) and an empty S3 bucket."""
    aws_test_credentials(monkeypatch)
    bucket = f"restore-{uuid.uuid4().hex[:12]}"
    with temporary_postgres_database() as url:
        app = build_app(
            url,
            CRM_BACKUP_KEY=KEY,
            STORAGE_BACKEND="s3",
            S3_BUCKET=bucket,
            S3_ENDPOINT_URL=s3_endpoint,
        )
        with app.app_context():
            from app.core.storage import get_storage

            get_storage().ensure_bucket()
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _counts(app):
    with app.app_context(), db.engine.connect() as connection:
        return backup._table_counts(connection)


def _files(app):
    from app.core.storage import get_storage

    with app.app_context():
        storage = get_storage()
        return {key: storage.get(key) for key in backup._list_storage(storage)}


def test_postgres_backup_restores_into_an_empty_database_and_bucket(source, target, tmp_path):
    archive = tmp_path / "nightly.fcb"
    made = invoke(source, "backup", "--output", str(archive))
    assert made.exit_code == 0, made.output
    assert archive.read_bytes().startswith(backup.MAGIC)
    assert not list(tmp_path.glob(".tmp-*"))
    source_counts, source_files = _counts(source), _files(source)
    assert source_counts["lead"] >= 3 and source_counts["invoice"] == 1
    assert len(source_files) == 2

    done = invoke(target, "restore", str(archive))
    assert done.exit_code == 0, done.output
    assert "audit chain verified" in done.output

    restored = _counts(target)
    # The source logged the backup after its snapshot; the target logs the restore after it.
    assert restored.pop("audit_log") == source_counts.pop("audit_log")
    assert restored == source_counts
    assert _files(target) == source_files
    with target.app_context():
        assert db.session.get(Client, source.client_id).pan == PAN
        stored = db.session.execute(text("SELECT pan FROM client")).scalar_one()
        assert PAN not in stored
        from app.core.audit import verify_chain

        with db.engine.connect() as connection:
            assert verify_chain(connection).ok
        last = db.session.execute(
            text("SELECT action, detail FROM audit_log ORDER BY seq DESC LIMIT 1")
        ).one()
        assert last.action == "restore" and "audit chain of" in last.detail


def _assert_target_empty(app):
    assert sum(_counts(app).values()) == 0
    assert _files(app) == {}


@pytest.fixture(scope="module")
def archive(source, tmp_path_factory):
    path = tmp_path_factory.mktemp("archive") / "a.fcb"
    with source.app_context():
        backup.create_backup(str(path))
    return path


def test_a_flipped_byte_is_refused_and_nothing_is_written(archive, target, tmp_path):
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "flipped.fcb"
    bad.write_bytes(bytes(data))
    done = invoke(target, "restore", str(bad))
    assert done.exit_code != 0
    assert "corrupted" in done.output
    _assert_target_empty(target)


def test_a_truncated_archive_is_refused(archive, target, tmp_path):
    bad = tmp_path / "short.fcb"
    bad.write_bytes(archive.read_bytes()[:-100])
    done = invoke(target, "restore", str(bad))
    assert done.exit_code != 0
    assert "truncated" in done.output or "corrupted" in done.output
    _assert_target_empty(target)


def test_a_wrong_key_is_refused(archive, target, monkeypatch):
    monkeypatch.setitem(target.config, "CRM_BACKUP_KEY", base64.urlsafe_b64encode(os.urandom(32)))
    done = invoke(target, "restore", str(archive))
    assert done.exit_code != 0
    assert "wrong backup key" in done.output
    _assert_target_empty(target)


def test_a_file_that_is_no_archive_is_refused(target, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    done = invoke(target, "restore", str(bad))
    assert done.exit_code != 0 and "not a FinCRM backup" in done.output
    _assert_target_empty(target)


def test_restore_into_a_database_with_rows_is_refused(archive, source):
    before = _counts(source)
    done = invoke(source, "restore", str(archive))
    assert done.exit_code != 0
    assert "refusing to restore: the target database is not empty" in done.output
    assert _counts(source) == before


def test_a_sqlite_backup_restores_too(tmp_path):
    src = build_app(f"sqlite:///{tmp_path / 'src.db'}", CRM_BACKUP_KEY=KEY)
    prepare_schema(src)
    with src.app_context():
        agent = make_staff("Agent", make_branch(tz="UTC"))
        make_lead(agent)
        db.session.commit()
        owner = find_owner(lead_id=db.session.execute(text("SELECT id FROM lead")).scalar_one())
        actor = Actor(agent.user_id, frozenset({"Agent"}), agent.branch_id, agent.user.username)
        upload_document(owner, "pan_card", "pan.pdf", PDF, actor=actor)
        db.session.commit()
    assert invoke(src, "backup", "--output", str(tmp_path / "s.fcb")).exit_code == 0
    dst = build_app(f"sqlite:///{tmp_path / 'dst.db'}", CRM_BACKUP_KEY=KEY)
    done = invoke(dst, "restore", str(tmp_path / "s.fcb"))
    assert done.exit_code == 0, done.output
    before, after = _counts(src), _counts(dst)
    assert after.pop("audit_log") == before.pop("audit_log")  # restore row vs backup row
    assert after == before
    assert _files(dst) == _files(src)


def test_the_scheduled_job_backs_up_and_removes_backups_past_retention(source, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    now = dt.datetime.now(dt.UTC)
    old = folder / backup._destination_name(now - dt.timedelta(days=40))
    recent = folder / backup._destination_name(now - dt.timedelta(days=3))
    for path in (old, recent):
        path.write_bytes(b"an older archive")
    with source.app_context():
        source.config["CRM_BACKUP_DIR"] = str(folder)
        source.config["CRM_BACKUP_KEEP_DAYS"] = 30
        try:
            result = backup.scheduled_backup()
        finally:
            source.config["CRM_BACKUP_DIR"] = None
    names = sorted(p.name for p in folder.iterdir())
    assert old.name not in names and recent.name in names and len(names) == 2
    assert "removed 1 old backup" in result
    newest = folder / max(names)
    assert newest.read_bytes().startswith(backup.MAGIC)


def test_the_scheduled_job_skips_without_a_destination(source):
    with source.app_context():
        assert backup.scheduled_backup().startswith("skipped")


def test_the_backup_job_is_scheduled_daily():
    from app.core.schedule import BY_NAME, DAY

    job = BY_NAME["backup"]
    assert job.func == "app.core.backup.scheduled_backup" and job.every_seconds == DAY


def test_chunks_detect_reordering_and_dropping():
    import io

    plain = os.urandom(backup.CHUNK * 2 + 10)
    sealed = io.BytesIO()
    backup.encrypt_stream(io.BytesIO(plain), sealed, b"k" * 32)
    out = io.BytesIO()
    backup.decrypt_stream(io.BytesIO(sealed.getvalue()), out, b"k" * 32)
    assert out.getvalue() == plain
    head = len(backup.MAGIC) + 8
    chunk = 4 + backup.CHUNK + 16
    body = sealed.getvalue()
    dropped = body[: head + chunk] + body[head + 2 * chunk :]
    with pytest.raises(backup.BackupError):
        backup.decrypt_stream(io.BytesIO(dropped), io.BytesIO(), b"k" * 32)
    only_first_two = body[: head + 2 * chunk]
    with pytest.raises(backup.BackupError, match="truncated"):
        backup.decrypt_stream(io.BytesIO(only_first_two), io.BytesIO(), b"k" * 32)


def test_an_s3_destination_gets_the_nightly_backup_and_restore_reads_it(
    source, target, s3_endpoint, monkeypatch
):
    aws_test_credentials(monkeypatch)
    bucket = f"backups-{uuid.uuid4().hex[:12]}"
    monkeypatch.setitem(source.config, "S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setitem(source.config, "CRM_BACKUP_DIR", f"s3://{bucket}/nightly")
    with source.app_context():
        client = backup._s3_client_for_backups()
        client.create_bucket(Bucket=bucket)
        old = "nightly/" + backup._destination_name(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        client.put_object(Bucket=bucket, Key=old, Body=b"an old archive")
        result = backup.scheduled_backup()
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0] != old and "removed 1 old backup" in result
    done = invoke(target, "restore", f"s3://{bucket}/{keys[0]}")
    assert done.exit_code == 0, done.output
    assert _files(target) == _files(source)
