"""Encryption at rest for PII, and keyed look-up hashes.

``EncryptedText`` stores a Fernet token (AES-128-CBC + HMAC-SHA256, so tampering or a wrong key
is detected) made with the first key of ``CRM_ENCRYPTION_KEYS``; every listed key can decrypt,
which is what makes key rotation possible (`flask crm rotate-keys`).

Encrypted values cannot be searched, so a value that must be found or de-duplicated (PAN,
Aadhaar, bank account) also gets a *look-up hash*: HMAC-SHA256 under a separate key of its
normalised form. The same input always gives the same hash; without the key it reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Text, TypeDecorator


class DecryptionError(RuntimeError):
    """A stored value could not be decrypted with any configured key (never returns garbage)."""


def _derived_key(secret: str, purpose: str) -> bytes:
    digest = hashlib.sha256(f"fincrm:{purpose}:{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


def encryption_keys(config) -> list[bytes]:
    """Configured Fernet keys, newest first. Outside production, one derived from SECRET_KEY."""
    keys = [
        k.encode() if isinstance(k, str) else k for k in config.get("CRM_ENCRYPTION_KEYS") or []
    ]
    if keys:
        return keys
    if config.get("CRM_ENV") == "production":
        raise RuntimeError(
            "CRM_ENCRYPTION_KEYS must be set in production (comma-separated Fernet keys)."
        )
    return [_derived_key(config["SECRET_KEY"], "pii")]


class Encryptor:
    def __init__(self, keys: Iterable[bytes]) -> None:
        keys = list(keys)
        if not keys:
            raise ValueError("at least one encryption key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except ValueError as exc:
            raise ValueError(
                "each CRM_ENCRYPTION_KEYS entry must be a Fernet key "
                "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from exc

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, where: str = "a value") -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError, UnicodeError) as exc:
            raise DecryptionError(
                f"cannot decrypt {where}: it was encrypted with a key that is not in "
                "CRM_ENCRYPTION_KEYS, or it was altered"
            ) from exc

    def rotate(self, token: str, where: str = "a value") -> str:
        """Re-encrypt ``token`` under the newest key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise DecryptionError(f"cannot re-encrypt {where}: no configured key opens it") from exc


def get_encryptor() -> Encryptor:
    keys = tuple(encryption_keys(current_app.config))
    cache = current_app.extensions.setdefault("crm_encryptors", {})
    if keys not in cache:
        cache[keys] = Encryptor(keys)
    return cache[keys]


def lookup_hash(kind: str, normalised_value: str | None) -> str | None:
    """HMAC-SHA256 of a normalised identifier, for exact look-ups of encrypted values."""
    if not normalised_value:
        return None
    config = current_app.config
    key = config.get("CRM_LOOKUP_HASH_KEY") or _derived_key(config["SECRET_KEY"], "lookup").decode()
    message = f"{kind}:{normalised_value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


class EncryptedText(TypeDecorator):
    """A text column whose database value is a Fernet token, never the plain text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        if value is None or value == "":
            return None
        return get_encryptor().encrypt(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        return get_encryptor().decrypt(value)


def encrypted_columns(metadata) -> list[tuple[object, object]]:
    """(table, column) of every EncryptedText column in the schema."""
    return [
        (table, column)
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedText)
    ]


def rotate_all_encrypted_columns(db, batch: int = 1000):
    """Re-encrypt, table by table and in batches, every stored token under the newest key.

    Reads and writes the raw tokens (``type_coerce`` to plain text), so values are never
    decrypted into Python objects the ORM could flush elsewhere. Yields (table, column, count).
    """
    from sqlalchemy import bindparam, select, type_coerce, update

    encryptor = get_encryptor()
    for table, column in encrypted_columns(db.metadata):
        pk = next(iter(table.primary_key.columns))
        raw = type_coerce(column, Text())
        done, last_id = 0, None
        while True:
            query = (
                select(pk, raw.label("token")).where(column.isnot(None)).order_by(pk).limit(batch)
            )
            if last_id is not None:
                query = query.where(pk > last_id)
            with db.engine.begin() as connection:
                rows = connection.execute(query).all()
                if not rows:
                    break
                where = f"{table.name}.{column.name} id {{}}"
                values = [
                    {"row_id": row[0], "token": encryptor.rotate(row.token, where.format(row[0]))}
                    for row in rows
                ]
                connection.execute(
                    update(table)
                    .where(pk == bindparam("row_id"))
                    .values({column.name: type_coerce(bindparam("token"), Text())}),
                    values,
                )
            done += len(rows)
            last_id = rows[-1][0]
        yield table.name, column.name, done
