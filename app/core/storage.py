"""Where documents' bytes live: a folder on disk (the embedded default) or an S3 bucket.

Callers never touch files or buckets directly; they ask ``get_storage()`` for the configured
backend and use four operations: ``put``, ``get``, ``exists`` and ``download_url``, plus
``delete`` for temporary files only (see ``TEMPORARY_PREFIXES``). Both backends behave the same
way where a user could notice:

* Keys are made by the server, and are still validated: a key that could escape the storage root
  or mean different things on disk and in S3 is refused with ``ValueError`` before any I/O.
* Stored documents are immutable: a second ``put`` of the same key raises ``FileExistsError`` and
  leaves the first content intact (an audit trail must not be rewritten silently), and ``delete``
  refuses any key outside ``TEMPORARY_PREFIXES`` (exports and report e-mails, which expire).
* A missing key raises ``FileNotFoundError``; any other backend failure raises ``StorageError``
  with a message naming the backend, the operation and the key.

The local backend streams bytes through the app (``download_url`` is ``None``); S3 hands the
browser a short-lived presigned URL so large files do not tie up a web worker.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from flask import current_app

BACKENDS = ("local", "s3")
EXTENSION_KEY = "crm_storage"

TEMPORARY_PREFIXES = ("exports/", "report-mail/")
"""The only keys ``delete`` may remove: files made to be downloaded or mailed, then expire."""

_KEY_CHARS = re.compile(r"[A-Za-z0-9/_.-]+")
_MAX_KEY_LENGTH = 1024  # S3's limit; also far below PATH_MAX.
_MAX_SEGMENT_LENGTH = 255  # NAME_MAX on common filesystems.
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer.


class StorageError(Exception):
    """The backend failed (disk full, permission denied, S3 unreachable, ...): a 5xx, not a
    user mistake, so it is deliberately not a ``DomainError``."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise ``ValueError``.

    Only ``[A-Za-z0-9/_.-]`` is allowed, with no empty segments and no segment starting with a
    dot. That rules out ``..`` traversal, absolute paths, backslashes, NUL, hidden files (and the
    local backend's ``.tmp-`` files), and keys such as ``a//b`` or ``a/./b`` that S3 would store
    as written while a filesystem would silently normalise them to another key.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("storage key is empty")
    if len(key) > _MAX_KEY_LENGTH:
        raise ValueError(f"storage key is longer than {_MAX_KEY_LENGTH} characters")
    if not _KEY_CHARS.fullmatch(key):
        raise ValueError(f"storage key {key!r} may only contain A-Z a-z 0-9 / _ . -")
    if key.startswith("/"):
        raise ValueError(f"storage key {key!r} must be relative")
    if ".." in key:
        raise ValueError(f"storage key {key!r} must not contain '..'")
    for segment in key.split("/"):
        if not segment:
            raise ValueError(f"storage key {key!r} has an empty path segment")
        if segment.startswith("."):
            raise ValueError(f"storage key {key!r} has a segment starting with '.'")
        if len(segment) > _MAX_SEGMENT_LENGTH:
            raise ValueError(f"storage key {key!r} has a segment over {_MAX_SEGMENT_LENGTH} chars")
    return key


def attachment_disposition(download_name: str, inline: bool = False) -> str:
    """A ``Content-Disposition: attachment`` value that cannot inject headers or paths.

    Control characters and path separators are dropped; an ASCII ``filename`` is always given
    and, when the name is not plain ASCII, an RFC 6266 ``filename*`` carries the real one.
    """
    name = "".join(ch for ch in download_name if ch.isprintable() and ch not in "/\\").strip()
    name = name or "download"
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = fallback.replace('"', "_").strip() or "download"
    value = f'{"inline" if inline else "attachment"}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


class Storage(ABC):
    """The storage contract. Public methods validate the key, then call the backend's ``_do``
    method, so no backend can forget validation and no bad key ever reaches the disk or S3."""

    name: ClassVar[str]

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``; ``FileExistsError`` if the key is already taken."""
        self._put(validate_key(key), bytes(data), content_type)

    def get(self, key: str) -> bytes:
        """The stored bytes; ``FileNotFoundError`` if nothing is stored under ``key``."""
        return self._get(validate_key(key))

    def exists(self, key: str) -> bool:
        return self._exists(validate_key(key))

    def delete(self, key: str) -> bool:
        """Remove a temporary file; False if it was already gone. Keys outside
        ``TEMPORARY_PREFIXES`` (documents) are refused with ``ValueError``: they never go."""
        validate_key(key)
        if not key.startswith(TEMPORARY_PREFIXES):
            raise ValueError(f"storage key {key!r} is not a temporary file; it cannot be deleted")
        return self._delete(key)

    def remove_unreferenced(self, key: str) -> bool:
        """Remove a file that no committed row references: a document whose upload's
        transaction failed after the bytes were stored. False if it was already gone."""
        validate_key(key)
        return self._delete(key)

    def download_url(
        self,
        key: str,
        download_name: str,
        content_type: str,
        expires_in: int,
        inline: bool = False,
    ) -> str | None:
        """A URL the browser can fetch the file from directly, or ``None`` when the app must
        stream the bytes itself (see ``get``)."""
        validate_key(key)
        if not 1 <= expires_in <= _MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be 1..{_MAX_PRESIGN_SECONDS} seconds")
        return self._download_url(key, download_name, content_type, expires_in, inline)

    @abstractmethod
    def _put(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def _get(self, key: str) -> bytes: ...

    @abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abstractmethod
    def _delete(self, key: str) -> bool: ...

    @abstractmethod
    def _download_url(
        self, key: str, download_name: str, content_type: str, expires_in: int, inline: bool
    ) -> str | None: ...


class LocalStorage(Storage):
    """Files under ``root``. Good for the embedded mode and one-machine deployments.

    The content type is not recorded: the caller keeps it with the document's database row.
    """

    name = "local"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        # Key validation already forbids traversal; resolving catches a symlink inside the root
        # that points elsewhere.
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} resolves outside the storage root")
        return path

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # includes a file already stored where a folder is needed
            message = f"local storage: creating the folder for {key!r} failed: {exc}"
            raise StorageError(message) from exc
        tmp_name: str | None = None
        try:
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            # os.link publishes the complete file atomically and, unlike os.replace, fails if
            # the key exists, so two concurrent writers cannot overwrite each other.
            os.link(tmp_name, path)
            _fsync_dir(path.parent)
        except FileExistsError:
            raise FileExistsError(f"storage key {key!r} already exists") from None
        except OSError as exc:
            raise StorageError(f"local storage: writing {key!r} failed: {exc}") from exc
        finally:
            if tmp_name is not None:
                Path(tmp_name).unlink(missing_ok=True)

    def _get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise FileNotFoundError(f"storage key {key!r} not found") from None
        except OSError as exc:
            raise StorageError(f"local storage: reading {key!r} failed: {exc}") from exc

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"local storage: deleting {key!r} failed: {exc}") from exc
        return True

    def _download_url(
        self, key: str, download_name: str, content_type: str, expires_in: int, inline: bool
    ) -> str | None:
        return None


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable, so a crash cannot lose an acknowledged upload."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Storage(Storage):
    """Objects in an S3 bucket (or any S3-compatible server, via ``endpoint_url``).

    Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    profiles, instance roles); none are read from the app's config.
    """

    name = "s3"

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        client: Any = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        public_endpoint_url: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        self.bucket = bucket
        self.region = region
        self.client = client or _s3_client(
            endpoint_url, region, connect_timeout, read_timeout, max_attempts
        )
        # Download links are signed for the address browsers use: SigV4 signs the host, so a
        # link made for an internal name (compose's ``s3:9000``) cannot be rewritten later.
        self.signer = (
            _s3_client(public_endpoint_url, region, connect_timeout, read_timeout, max_attempts)
            if public_endpoint_url
            else self.client
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint={self.client.meta.endpoint_url!r})"

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        return StorageError(
            f"S3 storage: {action} {key!r} in bucket {self.bucket!r} "
            f"at {self.client.meta.endpoint_url} failed: {exc}"
        )

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # IfNoneMatch makes the no-overwrite check atomic on the server (no head-then-put
            # race); the SHA-256 lets S3 reject a body corrupted in transit.
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                ChecksumAlgorithm="SHA256",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _error_code(exc) in {"PreconditionFailed", "412"}:
                raise FileExistsError(f"storage key {key!r} already exists") from None
            raise self._fail("writing", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("writing", key, exc) from exc

    def _get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # ChecksumMode makes botocore verify the stored SHA-256 against the bytes received.
            response = self.client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            return response["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404"}:
                raise FileNotFoundError(f"storage key {key!r} not found") from None
            raise self._fail("reading", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("reading", key, exc) from exc

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404"}:
                return False
            raise self._fail("checking", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("checking", key, exc) from exc

    def _delete(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        if not self._exists(key):
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("deleting", key, exc) from exc
        return True

    def _download_url(
        self, key: str, download_name: str, content_type: str, expires_in: int, inline: bool
    ) -> str | None:
        """A presigned GET whose response headers make the browser save the file under
        ``download_name`` with ``content_type``; the headers are part of the signature, so a
        recipient cannot change them without invalidating the URL."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.signer.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": attachment_disposition(download_name, inline),
                    "ResponseContentType": content_type,
                },
                ExpiresIn=expires_in,
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("signing a download URL for", key, exc) from exc

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing. For development and tests; in production the
        bucket (with its encryption, versioning and lifecycle rules) is provisioned separately."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in {"404", "NoSuchBucket"}:
                raise self._fail("checking bucket", self.bucket, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("checking bucket", self.bucket, exc) from exc
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint.
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**params)
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":  # another process won the race
                raise self._fail("creating bucket", self.bucket, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("creating bucket", self.bucket, exc) from exc


def _s3_client(
    endpoint_url: str | None,
    region: str,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
) -> Any:
    """A boto3 S3 client with SigV4 and path-style addressing (what S3-compatible servers such
    as moto expect), bounded timeouts and standard retries."""
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    # A private session: boto3's global default session is not safe to create from threads.
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def storage_from_config(config: Mapping[str, Any]) -> Storage:
    """Build the backend named by ``STORAGE_BACKEND`` (``local`` unless set)."""
    backend = str(config.get("STORAGE_BACKEND") or "local").strip().lower()
    if backend == "local":
        root = config.get("STORAGE_LOCAL_ROOT")
        if not root:
            raise ValueError("STORAGE_LOCAL_ROOT must be set for STORAGE_BACKEND=local")
        return LocalStorage(Path(root))
    if backend == "s3":
        bucket = config.get("S3_BUCKET")
        if not bucket:
            raise ValueError("S3_BUCKET must be set for STORAGE_BACKEND=s3")
        return S3Storage(
            bucket,
            endpoint_url=config.get("S3_ENDPOINT_URL") or None,
            region=config.get("S3_REGION") or "us-east-1",
            public_endpoint_url=config.get("S3_PUBLIC_ENDPOINT_URL") or None,
        )
    raise ValueError(f"unknown STORAGE_BACKEND {backend!r}; one of {', '.join(BACKENDS)}")


def get_storage() -> Storage:
    """The app's storage backend, built once per app and kept on ``app.extensions``."""
    extensions = current_app.extensions
    storage = extensions.get(EXTENSION_KEY)
    if storage is None:
        storage = extensions.setdefault(EXTENSION_KEY, storage_from_config(current_app.config))
    return storage
