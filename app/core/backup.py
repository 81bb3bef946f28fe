"""Backups: one encrypted archive holding the database, every stored file and a manifest.

Archive layout (before encryption) is a tar file with ``manifest.json``, ``database.dump``
(``pg_dump --format=custom`` on PostgreSQL, a SQLite file made with the sqlite3 backup API in the
embedded mode) and ``storage/<key>`` for every stored file. The manifest lists per-table row
counts, the SHA-256 of each member, the schema revision, the created time and the last audit-log
row's hash. Counts, dump and file list all come from one snapshot on PostgreSQL (a REPEATABLE
READ transaction whose snapshot ``pg_dump --snapshot`` reuses).

Encryption is AES-256-GCM in 1 MiB chunks: each chunk is authenticated with its index and a
last-chunk flag, so a flipped byte, a reordered or dropped chunk and a truncated file are all
detected before anything is written to a restore target. The key is ``CRM_BACKUP_KEY``
(urlsafe base64 of 32 bytes); outside production it falls back to a key derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import struct
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from sqlalchemy import inspect, text

log = logging.getLogger(__name__)

MAGIC = b"FINCRM-BACKUP-1\n"
CHUNK = 1024 * 1024
_NONCE_PREFIX = 8
_LEN = struct.Struct(">I")
BACKUP_SUFFIX = ".fcb"
NAME_FORMAT = "fincrm-%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    """A backup or restore refused or failed; the message is one line naming the problem."""


# ---- key and encryption -------------------------------------------------------------------


def backup_key(config: Any = None) -> bytes:
    from app.core.crypto import _derived_key

    config = config if config is not None else current_app.config
    configured = config.get("CRM_BACKUP_KEY")
    if configured:
        raw = configured.encode() if isinstance(configured, str) else configured
        try:
            key = base64.urlsafe_b64decode(raw)
        except ValueError as exc:
            raise BackupError("CRM_BACKUP_KEY is not urlsafe base64 of 32 bytes") from exc
        if len(key) != 32:
            raise BackupError("CRM_BACKUP_KEY must be urlsafe base64 of 32 bytes")
        return key
    if config.get("CRM_ENV") == "production":
        raise BackupError("CRM_BACKUP_KEY must be set in production")
    return base64.urlsafe_b64decode(_derived_key(config["SECRET_KEY"], "backup"))


def _aad(index: int, last: bool) -> bytes:
    return MAGIC + struct.pack(">QB", index, 1 if last else 0)


def encrypt_stream(source: BinaryIO, target: BinaryIO, key: bytes) -> None:
    aead = AESGCM(key)
    prefix = os.urandom(_NONCE_PREFIX)
    target.write(MAGIC + prefix)
    index = 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK)
        last = not following
        nonce = prefix + struct.pack(">I", index)
        sealed = aead.encrypt(nonce, chunk, _aad(index, last))
        target.write(_LEN.pack(len(sealed)) + sealed)
        if last:
            return
        chunk, index = following, index + 1


def decrypt_stream(source: BinaryIO, target: BinaryIO, key: bytes) -> None:
    """Decrypt into ``target``; ``BackupError`` on anything not a whole, authentic archive."""
    head = source.read(len(MAGIC) + _NONCE_PREFIX)
    if not head.startswith(MAGIC) or len(head) < len(MAGIC) + _NONCE_PREFIX:
        raise BackupError("not a FinCRM backup archive (bad header)")
    prefix = head[len(MAGIC) :]
    aead = AESGCM(key)
    index = 0
    while True:
        size_bytes = source.read(_LEN.size)
        if not size_bytes:
            raise BackupError("archive is truncated (its last chunk is missing)")
        if len(size_bytes) < _LEN.size:
            raise BackupError("archive is truncated")
        (size,) = _LEN.unpack(size_bytes)
        if size > CHUNK + 16:
            raise BackupError(f"archive is corrupted (chunk {index} has an impossible length)")
        sealed = source.read(size)
        if len(sealed) < size:
            raise BackupError("archive is truncated")
        nonce = prefix + struct.pack(">I", index)
        plain = None
        for last in (False, True):
            try:
                plain = aead.decrypt(nonce, sealed, _aad(index, last))
                break
            except InvalidTag:
                continue
        if plain is None:
            if index == 0:
                raise BackupError(
                    "archive cannot be decrypted: wrong backup key, or the archive is corrupted"
                )
            raise BackupError(f"archive is corrupted (chunk {index} fails authentication)")
        target.write(plain)
        if last:
            if source.read(1):
                raise BackupError("archive is corrupted (data after its last chunk)")
            return
        index += 1


# ---- sources ------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_postgres(engine) -> bool:
    return engine.dialect.name == "postgresql"


def _pg_args(engine) -> list[str]:
    url = engine.url
    args = []
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    return args


def _pg_env(engine) -> dict[str, str]:
    env = dict(os.environ)
    if engine.url.password:
        env["PGPASSWORD"] = engine.url.password
    return env


def _table_counts(connection) -> dict[str, int]:
    counts = {}
    for table in sorted(inspect(connection).get_table_names()):
        quoted = connection.dialect.identifier_preparer.quote(table)
        counts[table] = connection.execute(text(f"SELECT count(*) FROM {quoted}")).scalar_one()
    return counts


def _scalar_or_none(connection, sql: str) -> Any:
    """The query's value, or None when its table does not exist (an empty database)."""
    table = sql.split(" FROM ", 1)[1].split()[0]
    if not inspect(connection).has_table(table):
        return None
    return connection.execute(text(sql)).scalar()


def _list_storage(storage) -> list[str]:
    from app.core.storage import LocalStorage, S3Storage

    if isinstance(storage, LocalStorage):
        if not storage.root.exists():
            return []
        keys = []
        for path in sorted(storage.root.rglob("*")):
            relative = path.relative_to(storage.root).as_posix()
            if path.is_file() and not any(p.startswith(".") for p in relative.split("/")):
                keys.append(relative)
        return keys
    if isinstance(storage, S3Storage):
        keys = []
        paginator = storage.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=storage.bucket):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)
    raise BackupError(f"cannot list the files of storage {storage!r}")


@dataclass
class BackupResult:
    path: str
    manifest: dict[str, Any]


def _write_archive_tar(work: Path, engine, storage) -> tuple[Path, dict[str, Any]]:
    """Dump database and files into ``work/archive.tar``; return it and the manifest."""
    dump = work / "database.dump"
    with engine.connect() as connection:
        if _is_postgres(engine):
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                counts = _table_counts(connection)
                revision = _scalar_or_none(connection, "SELECT version_num FROM alembic_version")
                last_hash = _scalar_or_none(
                    connection, "SELECT row_hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                )
                keys = _list_storage(storage)
                command = [
                    "pg_dump",
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={dump}",
                    *_pg_args(engine),
                    engine.url.database,
                ]
                done = subprocess.run(
                    command, capture_output=True, text=True, env=_pg_env(engine), check=False
                )
                if done.returncode != 0:
                    raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
            kind = "postgresql"
        else:
            raw = connection.connection.driver_connection
            with connection.begin():
                counts = _table_counts(connection)
                revision = _scalar_or_none(connection, "SELECT version_num FROM alembic_version")
                last_hash = _scalar_or_none(
                    connection, "SELECT row_hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                )
                keys = _list_storage(storage)
            target = sqlite3.connect(dump)
            try:
                raw.backup(target)
            finally:
                target.close()
            kind = "sqlite"
    members: dict[str, str] = {"database.dump": _sha256_file(dump)}
    tar_path = work / "archive.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(dump, arcname="database.dump")
        dump.unlink()
        for key in keys:
            data = storage.get(key)
            name = f"storage/{key}"
            members[name] = hashlib.sha256(data).hexdigest()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        manifest = {
            "format": 1,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "database": kind,
            "schema_revision": revision,
            "last_audit_hash": last_hash,
            "row_counts": counts,
            "documents": keys,
            "members": members,
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return tar_path, manifest


def _put_destination(local_file: Path, destination: str) -> str:
    """Publish ``local_file`` at ``destination`` (a path or ``s3://bucket/key``) atomically."""
    if destination.startswith("s3://"):
        bucket, _, key = destination[5:].partition("/")
        client = _s3_client_for_backups()
        # An S3 object becomes visible only once its upload completes: readers never see half.
        client.upload_file(str(local_file), bucket, key)
        return destination
    final = Path(destination)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".tmp-", suffix=BACKUP_SUFFIX)
    os.close(fd)
    try:
        shutil.copyfile(local_file, tmp_name)
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, final)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return str(final)


def _s3_client_for_backups():
    from app.core.storage import _s3_client

    config = current_app.config
    return _s3_client(
        config.get("S3_ENDPOINT_URL") or None, config.get("S3_REGION") or "us-east-1", 5.0, 300.0, 3
    )


def create_backup(destination: str) -> BackupResult:
    """Write an encrypted archive of the database and storage to ``destination``."""
    from app.core.audit import record_event
    from app.core.storage import get_storage
    from app.extensions import db

    key = backup_key()
    with tempfile.TemporaryDirectory(prefix="fincrm-backup-") as tmp:
        work = Path(tmp)
        tar_path, manifest = _write_archive_tar(work, db.engine, get_storage())
        sealed = work / "archive.fcb"
        with open(tar_path, "rb") as source, open(sealed, "wb") as target:
            encrypt_stream(source, target, key)
        tar_path.unlink()
        where = _put_destination(sealed, destination)
    total = sum(manifest["row_counts"].values())
    detail = (
        f"backup written to {where}: {total} rows in {len(manifest['row_counts'])} tables, "
        f"{len(manifest['documents'])} files, schema {manifest['schema_revision']}"
    )
    record_event("backup", record_type="backup", detail=detail)
    log.info(detail)
    return BackupResult(where, manifest)


# ---- restore ------------------------------------------------------------------------------


def _fetch_archive(path: str, work: Path) -> Path:
    if path.startswith("s3://"):
        bucket, _, key = path[5:].partition("/")
        local = work / "download.fcb"
        try:
            _s3_client_for_backups().download_file(bucket, key, str(local))
        except Exception as exc:
            raise BackupError(f"cannot read {path}: {exc}") from exc
        return local
    local = Path(path)
    if not local.is_file():
        raise BackupError(f"{path}: no such archive file")
    return local


def _open_verified(path: str, work: Path) -> tuple[tarfile.TarFile, dict[str, Any]]:
    """Decrypt and check the archive; nothing is written to any target here."""
    sealed = _fetch_archive(path, work)
    plain = work / "archive.tar"
    with open(sealed, "rb") as source, open(plain, "wb") as target:
        decrypt_stream(source, target, backup_key())
    try:
        tar = tarfile.open(plain, "r:")
        manifest_member = tar.extractfile("manifest.json")
        manifest = json.loads(manifest_member.read())
    except (tarfile.TarError, KeyError, ValueError, AttributeError) as exc:
        raise BackupError(f"archive has no readable manifest: {exc}") from exc
    for name, expected in manifest["members"].items():
        try:
            member = tar.extractfile(name)
        except KeyError:
            member = None
        if member is None:
            raise BackupError(f"archive member {name} listed in the manifest is missing")
        digest = hashlib.sha256()
        while block := member.read(CHUNK):
            digest.update(block)
        if digest.hexdigest() != expected:
            raise BackupError(f"archive member {name} does not match its manifest checksum")
    return tar, manifest


def _target_problem(engine, storage) -> str | None:
    with engine.connect() as connection:
        for table, count in _table_counts(connection).items():
            if count:
                return f"the target database is not empty (table {table} has {count} rows)"
    files = _list_storage(storage)
    if files:
        return f"the target storage is not empty ({len(files)} files, e.g. {files[0]})"
    return None


def _restore_database(engine, dump: Path, kind: str) -> None:
    if kind != engine.dialect.name:
        raise BackupError(f"archive holds a {kind} database; the target is {engine.dialect.name}")
    engine.dispose()
    if kind == "postgresql":
        command = [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            *_pg_args(engine),
            f"--dbname={engine.url.database}",
            str(dump),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, env=_pg_env(engine), check=False
        )
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip()[:500]}")
        return
    source = sqlite3.connect(dump)
    try:
        with engine.connect() as connection:
            source.backup(connection.connection.driver_connection)
    finally:
        source.close()
    engine.dispose()


def restore_backup(path: str) -> dict[str, Any]:
    """Restore ``path`` into the configured (empty) database and storage, then verify it."""
    from app.core.audit import record_event, verify_chain
    from app.core.storage import get_storage
    from app.extensions import db

    storage = get_storage()
    with tempfile.TemporaryDirectory(prefix="fincrm-restore-") as tmp:
        work = Path(tmp)
        tar, manifest = _open_verified(path, work)
        with tar:
            problem = _target_problem(db.engine, storage)
            if problem:
                raise BackupError(f"refusing to restore: {problem}")
            dump = work / "database.dump"
            with tar.extractfile("database.dump") as member, open(dump, "wb") as out:
                shutil.copyfileobj(member, out, CHUNK)
            _restore_database(db.engine, dump, manifest["database"])
            for key in manifest["documents"]:
                data = tar.extractfile(f"storage/{key}").read()
                storage.put(key, data, "application/octet-stream")
    with db.engine.connect() as connection:
        counts = _table_counts(connection)
        report = verify_chain(connection)
        last_hash = _scalar_or_none(
            connection, "SELECT row_hash FROM audit_log ORDER BY seq DESC LIMIT 1"
        )
    for table, expected in manifest["row_counts"].items():
        if counts.get(table) != expected:
            raise BackupError(
                f"restored table {table} has {counts.get(table)} rows; the backup had {expected}"
            )
    for key in manifest["documents"]:
        digest = hashlib.sha256(storage.get(key)).hexdigest()
        if digest != manifest["members"][f"storage/{key}"]:
            raise BackupError(f"restored file {key} does not match its checksum")
    if not report.ok:
        raise BackupError(
            f"restored audit log is broken at seq {report.first_bad_seq}: {report.reason}"
        )
    if last_hash != manifest["last_audit_hash"]:
        raise BackupError(
            f"restored audit log does not end with the backup's last entry "
            f"({last_hash} != {manifest['last_audit_hash']})"
        )
    detail = (
        f"restored {path} (made {manifest['created_at']}): "
        f"{sum(counts.values())} rows, {len(manifest['documents'])} files, audit chain of "
        f"{report.rows} rows verified"
    )
    record_event("restore", record_type="backup", detail=detail)
    log.info(detail)
    return manifest


# ---- the scheduled job --------------------------------------------------------------------


def _destination_name(now: dt.datetime) -> str:
    return now.strftime(NAME_FORMAT) + BACKUP_SUFFIX


def remove_old_backups(destination: str, keep_days: int, now: dt.datetime | None = None) -> list:
    """Delete this destination's backups older than ``keep_days`` (the newest always stays)."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=keep_days)
    found: list[tuple[dt.datetime, str]] = []
    if destination.startswith("s3://"):
        bucket, _, prefix = destination[5:].partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        client = _s3_client_for_backups()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                made = _made_at(name)
                if made:
                    found.append((made, item["Key"]))
    else:
        folder = Path(destination)
        for path in folder.glob(f"fincrm-*{BACKUP_SUFFIX}"):
            made = _made_at(path.name)
            if made:
                found.append((made, str(path)))
    found.sort()
    removed = []
    for made, where in found[:-1]:
        if made < cutoff:
            if destination.startswith("s3://"):
                client.delete_object(Bucket=bucket, Key=where)
            else:
                Path(where).unlink(missing_ok=True)
            removed.append(where)
    return removed


def _made_at(name: str) -> dt.datetime | None:
    try:
        stem = name.removesuffix(BACKUP_SUFFIX)
        return dt.datetime.strptime(stem, NAME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def scheduled_backup() -> str:
    """The daily job: a backup into ``CRM_BACKUP_DIR`` (a folder or ``s3://bucket/prefix``),
    then backups older than ``CRM_BACKUP_KEEP_DAYS`` removed. Skipped when no folder is set."""
    config = current_app.config
    destination = (config.get("CRM_BACKUP_DIR") or "").strip()
    if not destination:
        log.info("backup skipped: CRM_BACKUP_DIR is not set")
        return "skipped: CRM_BACKUP_DIR is not set"
    now = dt.datetime.now(dt.UTC)
    name = _destination_name(now)
    target = (
        destination.rstrip("/") + "/" + name
        if destination.startswith("s3://")
        else str(Path(destination) / name)
    )
    result = create_backup(target)
    removed = remove_old_backups(destination, int(config.get("CRM_BACKUP_KEEP_DAYS") or 14), now)
    log.info("backup retention removed %d old backup(s)", len(removed))
    return f"{result.path}; removed {len(removed)} old backup(s)"
