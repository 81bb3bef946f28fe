"""Document storage: the same promises from the local folder and from S3 (moto's real server)."""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence
from flask import Flask

from app.core import storage as storage_module
from app.core.storage import (
    LocalStorage,
    S3Storage,
    Storage,
    StorageError,
    get_storage,
    storage_from_config,
)
from tests.s3_server import aws_test_credentials, moto_s3_server

KEY = "clients/42/kyc/pan-card.v1.pdf"
# Every byte value, so an encoding or newline translation anywhere would show.
DATA = bytes(range(256)) * 40 + b"%PDF-1.7 end"
BAD_KEYS = ["../x", "/abs", "a\\b", "a\x00b", "", "a/../b", "a//b", "a/./b", "x/", ".hidden", "a b"]


@pytest.fixture(scope="session")
def s3_endpoint():
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_storage(s3_endpoint, monkeypatch) -> S3Storage:
    """An S3Storage built the way the app builds it (credentials from the environment), on a
    fresh bucket so tests never see each other's objects."""
    aws_test_credentials(monkeypatch)
    storage = S3Storage(f"test-{uuid.uuid4().hex[:16]}", endpoint_url=s3_endpoint)
    storage.ensure_bucket()
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    return request.getfixturevalue("s3_storage")


def stored_keys(storage: Storage) -> list[str]:
    """What the backend holds, read behind the storage's back."""
    if isinstance(storage, LocalStorage):
        if not storage.root.exists():
            return []
        return sorted(
            str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file()
        )
    listing = storage.client.list_objects_v2(Bucket=storage.bucket)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


# ---- both backends ----


def test_put_then_get_returns_the_same_bytes(storage):
    storage.put(KEY, DATA, "application/pdf")

    assert storage.get(KEY) == DATA
    assert stored_keys(storage) == [KEY]


def test_exists_only_after_put(storage):
    assert storage.exists(KEY) is False

    storage.put(KEY, DATA, "application/pdf")

    assert storage.exists(KEY) is True
    assert storage.exists("clients/42/kyc/other.pdf") is False


def test_second_put_of_the_same_key_is_refused_and_the_first_content_kept(storage):
    storage.put(KEY, b"original", "text/plain")

    with pytest.raises(FileExistsError, match="already exists"):
        storage.put(KEY, b"replacement", "text/plain")

    assert storage.get(KEY) == b"original"


def test_reading_a_missing_key_raises_file_not_found(storage):
    with pytest.raises(FileNotFoundError, match="not found"):
        storage.get("clients/42/missing.pdf")


def test_an_empty_document_round_trips(storage):
    storage.put("empty.txt", b"", "text/plain")

    assert storage.exists("empty.txt")
    assert storage.get("empty.txt") == b""


@pytest.mark.parametrize("bad_key", BAD_KEYS)
def test_bad_keys_are_refused_and_nothing_is_stored(storage, bad_key):
    with pytest.raises(ValueError, match="storage key"):
        storage.put(bad_key, DATA, "application/pdf")
    with pytest.raises(ValueError, match="storage key"):
        storage.get(bad_key)
    with pytest.raises(ValueError, match="storage key"):
        storage.exists(bad_key)
    with pytest.raises(ValueError, match="storage key"):
        storage.download_url(bad_key, "x.pdf", "application/pdf", 60)

    assert stored_keys(storage) == []


@pytest.mark.parametrize("bad_key", BAD_KEYS)
def test_bad_keys_are_refused_before_the_s3_client_is_used(bad_key):
    storage = S3Storage("fincrm-test", client=ClientThatMustNotBeCalled())

    with pytest.raises(ValueError, match="storage key"):
        storage.put(bad_key, DATA, "application/pdf")
    with pytest.raises(ValueError, match="storage key"):
        storage.get(bad_key)
    with pytest.raises(ValueError, match="storage key"):
        storage.exists(bad_key)
    with pytest.raises(ValueError, match="storage key"):
        storage.download_url(bad_key, "x.pdf", "application/pdf", 60)


class ClientThatMustNotBeCalled:
    def __getattr__(self, name):
        raise AssertionError(f"the S3 client was used ({name}) for an invalid key")


# ---- local backend ----


def test_local_download_url_is_none_so_the_app_streams_the_bytes(tmp_path):
    local = LocalStorage(tmp_path)
    local.put(KEY, DATA, "application/pdf")

    assert local.download_url(KEY, "PAN card.pdf", "application/pdf", 300) is None


def test_local_write_leaves_no_temporary_files(tmp_path):
    local = LocalStorage(tmp_path)
    local.put("a/one.bin", b"1", "application/octet-stream")
    local.put("a/two.bin", b"2", "application/octet-stream")

    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["one.bin", "two.bin"]


def test_local_failed_write_leaves_no_partial_document(tmp_path, monkeypatch):
    local = LocalStorage(tmp_path)

    def disk_error(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storage_module.os, "fsync", disk_error)
    with pytest.raises(StorageError, match="writing 'a/doc.pdf' failed: .*Input/output error"):
        local.put("a/doc.pdf", DATA, "application/pdf")
    monkeypatch.undo()

    assert not local.exists("a/doc.pdf")
    assert list((tmp_path / "a").iterdir()) == []
    local.put("a/doc.pdf", DATA, "application/pdf")  # the key is still free
    assert local.get("a/doc.pdf") == DATA


def test_local_refuses_a_symlink_that_leads_outside_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "files"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValueError, match="outside the storage root"):
        LocalStorage(root).put("link/stolen.txt", b"x", "text/plain")

    assert list(outside.iterdir()) == []


def test_local_files_are_plain_files_under_the_root(tmp_path):
    LocalStorage(tmp_path).put(KEY, DATA, "application/pdf")

    assert (tmp_path / KEY).read_bytes() == DATA


# ---- S3 backend ----


def test_s3_records_content_type_and_sha256_checksum(s3_storage):
    s3_storage.put(KEY, DATA, "application/pdf")

    head = s3_storage.client.head_object(Bucket=s3_storage.bucket, Key=KEY, ChecksumMode="ENABLED")
    assert head["ContentType"] == "application/pdf"
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(DATA).digest()).decode()


def test_s3_presigned_url_downloads_the_file_under_its_name(s3_storage):
    s3_storage.put(KEY, DATA, "application/pdf")

    url = s3_storage.download_url(KEY, "PAN card.pdf", "application/pdf", 300)
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
        disposition = response.headers["Content-Disposition"]
        content_type = response.headers["Content-Type"]

    assert body == DATA
    assert disposition == 'attachment; filename="PAN card.pdf"'
    assert content_type == "application/pdf"


def test_s3_presigned_url_keeps_a_non_ascii_name_and_blocks_header_injection(s3_storage):
    s3_storage.put(KEY, DATA, "application/pdf")

    url = s3_storage.download_url(KEY, 'Résumé "final"\r\nX-Evil: 1.pdf', "application/pdf", 300)
    with urllib.request.urlopen(url, timeout=10) as response:
        disposition = response.headers["Content-Disposition"]
        assert response.headers.get("X-Evil") is None

    assert disposition.startswith('attachment; filename="Resume _final_X-Evil: 1.pdf"; ')
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22X-Evil%3A%201.pdf" in disposition


def test_s3_presigned_url_is_signed_for_the_asked_lifetime(s3_storage):
    url = s3_storage.download_url(KEY, "PAN card.pdf", "application/pdf", 900)
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}

    assert query["X-Amz-Expires"] == "900"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-SignedHeaders"] == "host"
    assert len(query["X-Amz-Signature"]) == 64
    assert query["X-Amz-Credential"].startswith("testing/")
    assert query["X-Amz-Credential"].endswith("/us-east-1/s3/aws4_request")
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs(time.time() - signed_at.timestamp()) < 120
    assert query["response-content-disposition"] == 'attachment; filename="PAN card.pdf"'
    assert query["response-content-type"] == "application/pdf"


def test_s3_presigned_signature_covers_the_download_name(s3_storage):
    """moto accepts tampered URLs (STACK.md trap 10), so recompute SigV4 with botocore: the
    signature must match the secret key, and must not match once the filename is changed."""
    url = s3_storage.download_url(KEY, "PAN card.pdf", "application/pdf", 900)

    assert _sigv4_signature(url) == _query(url)["X-Amz-Signature"]
    tampered = _with_query(url, {"response-content-disposition": 'attachment; filename="x.exe"'})
    assert _sigv4_signature(tampered) != _query(url)["X-Amz-Signature"]
    longer = _with_query(url, {"X-Amz-Expires": "604800"})
    assert _sigv4_signature(longer) != _query(url)["X-Amz-Signature"]


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def _with_query(url: str, changes: dict[str, str]) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=percent_encode_sequence({**_query(url), **changes})))


def _sigv4_signature(url: str) -> str:
    """The signature S3 itself would expect for ``url``, computed independently of boto3's
    presigner with the test secret key."""
    query = _query(url)
    query.pop("X-Amz-Signature")
    parts = urlsplit(url)
    unsigned = urlunsplit(parts._replace(query=percent_encode_sequence(query)))
    request = AWSRequest(method="GET", url=unsigned)
    request.context["timestamp"] = query["X-Amz-Date"]
    auth = S3SigV4QueryAuth(
        Credentials("testing", "testing"), "s3", "us-east-1", expires=int(query["X-Amz-Expires"])
    )
    canonical_request = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical_request), request)


@pytest.mark.parametrize("expires_in", [0, -1, 7 * 24 * 3600 + 1])
def test_s3_presigned_url_lifetime_must_be_within_sigv4_limits(s3_storage, expires_in):
    with pytest.raises(ValueError, match="expires_in"):
        s3_storage.download_url(KEY, "x.pdf", "application/pdf", expires_in)


def test_s3_ensure_bucket_is_idempotent(s3_storage):
    s3_storage.put(KEY, DATA, "application/pdf")

    s3_storage.ensure_bucket()

    assert s3_storage.get(KEY) == DATA


def test_s3_bucket_outside_us_east_1_is_created_and_used(s3_endpoint, monkeypatch):
    aws_test_credentials(monkeypatch)
    mumbai = S3Storage(
        f"test-{uuid.uuid4().hex[:16]}", endpoint_url=s3_endpoint, region="ap-south-1"
    )

    mumbai.ensure_bucket()
    mumbai.put(KEY, DATA, "application/pdf")

    assert mumbai.get(KEY) == DATA
    location = mumbai.client.get_bucket_location(Bucket=mumbai.bucket)
    assert location["LocationConstraint"] == "ap-south-1"


def test_s3_unreachable_endpoint_raises_storage_error_quickly(monkeypatch):
    aws_test_credentials(monkeypatch)
    down = S3Storage(
        "fincrm-test", endpoint_url="http://127.0.0.1:1", connect_timeout=0.5, max_attempts=1
    )
    started = time.monotonic()

    with pytest.raises(StorageError, match=r"S3 storage: writing 'a/b\.pdf' .*127\.0\.0\.1:1"):
        down.put("a/b.pdf", DATA, "application/pdf")
    with pytest.raises(StorageError, match="reading 'a/b.pdf'"):
        down.get("a/b.pdf")
    with pytest.raises(StorageError, match="checking 'a/b.pdf'"):
        down.exists("a/b.pdf")
    with pytest.raises(StorageError, match="creating bucket|checking bucket"):
        down.ensure_bucket()

    assert time.monotonic() - started < 10


def test_s3_missing_bucket_is_a_storage_error_not_a_missing_file(s3_endpoint, monkeypatch):
    aws_test_credentials(monkeypatch)
    no_bucket = S3Storage(f"absent-{uuid.uuid4().hex[:12]}", endpoint_url=s3_endpoint)

    with pytest.raises(StorageError, match="NoSuchBucket"):
        no_bucket.put(KEY, DATA, "application/pdf")


# ---- configuration ----


def test_config_defaults_to_local_storage_under_the_configured_root(tmp_path):
    built = storage_from_config({"STORAGE_LOCAL_ROOT": str(tmp_path / "docs")})

    assert isinstance(built, LocalStorage)
    assert built.name == "local"
    assert built.root == (tmp_path / "docs").resolve()


def test_config_local_backend_requires_a_root():
    with pytest.raises(ValueError, match="STORAGE_LOCAL_ROOT"):
        storage_from_config({"STORAGE_BACKEND": "local"})


def test_config_builds_s3_storage_from_its_settings(monkeypatch):
    aws_test_credentials(monkeypatch)
    built = storage_from_config(
        {
            "STORAGE_BACKEND": "S3",
            "S3_BUCKET": "fincrm-docs",
            "S3_ENDPOINT_URL": "http://127.0.0.1:5000",
            "S3_REGION": "ap-south-1",
        }
    )

    assert isinstance(built, S3Storage)
    assert built.name == "s3"
    assert built.bucket == "fincrm-docs"
    assert built.client.meta.endpoint_url == "http://127.0.0.1:5000"
    assert built.client.meta.region_name == "ap-south-1"


def test_config_s3_region_defaults_to_us_east_1(monkeypatch):
    aws_test_credentials(monkeypatch)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    built = storage_from_config({"STORAGE_BACKEND": "s3", "S3_BUCKET": "fincrm-docs"})

    assert built.client.meta.region_name == "us-east-1"


def test_config_s3_backend_requires_a_bucket():
    with pytest.raises(ValueError, match="S3_BUCKET"):
        storage_from_config({"STORAGE_BACKEND": "s3", "S3_BUCKET": ""})


def test_config_refuses_an_unknown_backend_naming_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown STORAGE_BACKEND 'gcs'; one of local, s3"):
        storage_from_config({"STORAGE_BACKEND": "gcs"})


def test_get_storage_is_built_once_per_app(tmp_path):
    app = Flask(__name__)
    app.config.update(STORAGE_BACKEND="local", STORAGE_LOCAL_ROOT=str(tmp_path))

    with app.app_context():
        first = get_storage()
        first.put("a.txt", b"hello", "text/plain")
        assert get_storage() is first
        assert app.extensions["crm_storage"] is first
    with app.app_context():
        assert get_storage().get("a.txt") == b"hello"
        assert get_storage() is first


def test_get_storage_is_separate_for_each_app(tmp_path):
    apps = []
    for name in ("one", "two"):
        app = Flask(name)
        app.config.update(STORAGE_LOCAL_ROOT=str(tmp_path / name))
        apps.append(app)

    with apps[0].app_context():
        first = get_storage()
    with apps[1].app_context():
        second = get_storage()

    assert first is not second
    assert first.root.name == "one"
    assert second.root.name == "two"


def test_download_links_are_signed_for_the_public_s3_address(s3_endpoint, monkeypatch):
    """The app reaches S3 by an internal name (compose's ``http://s3:9000``); the browser by
    ``S3_PUBLIC_ENDPOINT_URL``. The link names the public address, its signature is valid for
    that host, and the file downloads through it; uploads still go to the internal address."""
    aws_test_credentials(monkeypatch)
    internal = urlsplit(s3_endpoint)
    public = f"http://localhost:{internal.port}"
    storage = storage_from_config(
        {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": f"test-{uuid.uuid4().hex[:16]}",
            "S3_ENDPOINT_URL": s3_endpoint,
            "S3_PUBLIC_ENDPOINT_URL": public,
        }
    )
    storage.ensure_bucket()
    storage.put(KEY, DATA, "application/pdf")

    url = storage.download_url(KEY, "PAN card.pdf", "application/pdf", 300)

    assert urlsplit(url).netloc == f"localhost:{internal.port}"
    assert storage.client.meta.endpoint_url == s3_endpoint
    assert _sigv4_signature(url) == _query(url)["X-Amz-Signature"]
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == DATA
    internal_link = storage_from_config(
        {"STORAGE_BACKEND": "s3", "S3_BUCKET": storage.bucket, "S3_ENDPOINT_URL": s3_endpoint}
    ).download_url(KEY, "PAN card.pdf", "application/pdf", 300)
    assert urlsplit(internal_link).netloc == internal.netloc
