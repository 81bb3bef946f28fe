"""API keys for other systems: Admin creates one for a service user, the key acts with that
user's role and row scoping, and a revoked, expired or made-up key is refused (401).

Keys are Flask-AppBuilder's own (``ab_api_key``; ``FAB_API_KEY_ENABLED``): a key is shown once
at creation and stored as a hash. FAB's ``/api/v1/security/api_keys/`` manages the caller's own
keys; ``/api/v1/apikey/`` (below) and ``flask crm api-key`` let Admin manage anyone's. Creating
and revoking a key is written to the audit log by the ORM hook (the hashes masked), under the
person who did it.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_appbuilder.security.sqla.models import ApiKey, User
from marshmallow import Schema, fields
from sqlalchemy import select

from app.core.audit import record_rejection
from app.core.crud import json_body
from app.core.errors import ConflictError, DomainError, FieldError, NotFound
from app.core.validators import clean_text, parse_date
from app.extensions import db

API_KEY_PERMISSIONS = ["can_list", "can_create", "can_get", "can_revoke"]
"""The same set as FAB's own ApiKeyApi: both classes share the ``ApiKey`` resource."""


def _security_manager():
    return current_app.appbuilder.sm


def key_json(key: ApiKey) -> dict[str, Any]:
    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "uuid": key.uuid,
        "name": key.name,
        "username": key.user.username if key.user else None,
        "key_prefix": key.key_prefix,
        "active": key.is_active,
        "created_on": moment(key.created_on),
        "expires_on": moment(key.expires_on),
        "revoked_on": moment(key.revoked_on),
        "last_used_on": moment(key.last_used_on),
    }


def create_key(username: Any, name: Any, expires_on: Any = None) -> dict[str, Any]:
    """A new key for ``username``; the answer holds the key itself, shown this once."""
    if not isinstance(username, str) or not username.strip():
        raise FieldError("name the user the key acts as.", "username")
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise FieldError(f"there is no user {username.strip()!r}.", "username")
    if not user.active:
        raise FieldError(f"{user.username} is not active.", "username")
    if not user.roles:
        raise FieldError(f"{user.username} has no role: the key could do nothing.", "username")
    label = clean_text(name if isinstance(name, str) else None, "name", 256, required=True)
    until = parse_date(expires_on, "expires_on") if expires_on not in (None, "") else None
    if until is not None and until <= date.today():
        raise FieldError("must be a date in the future.", "expires_on")
    created = _security_manager().create_api_key(
        user=user,
        name=label,
        expires_on=datetime.combine(until, time.min) if until else None,
    )
    if created is None:
        raise ConflictError("the key could not be stored; try again.")
    key = db.session.scalar(select(ApiKey).where(ApiKey.uuid == created["uuid"]))
    return {**key_json(key), "key": created["key"]}


def revoke_key(key_uuid: str) -> ApiKey:
    """Revoke a key at once; requests with it are refused from now on."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.uuid == key_uuid))
    if key is None:
        raise NotFound("there is no such API key.")
    if key.revoked_on is not None:
        raise ConflictError("this key was revoked already.")
    _security_manager().revoke_api_key(key_uuid)
    return key


class ApiKeyCreate(Schema):
    username = fields.String(required=True, metadata={"description": "the user the key acts as"})
    name = fields.String(required=True, metadata={"description": "what the key is for"})
    expires_on = fields.Date(allow_none=True, metadata={"description": "optional last day"})


class ApiKeyInfo(Schema):
    uuid = fields.String()
    name = fields.String()
    username = fields.String(allow_none=True)
    key_prefix = fields.String()
    active = fields.Boolean()
    created_on = fields.String(allow_none=True)
    expires_on = fields.String(allow_none=True)
    revoked_on = fields.String(allow_none=True)
    last_used_on = fields.String(allow_none=True)


class ApiKeyCreated(ApiKeyInfo):
    key = fields.String(metadata={"description": "the key itself, shown only this once"})


class ApiKeyAdminApi(BaseApi):
    """``/api/v1/apikey/``: Admin lists, creates and revokes the keys of any user."""

    resource_name = "apikey"
    class_permission_name = "ApiKey"
    base_permissions = API_KEY_PERMISSIONS
    method_permission_name = {
        "list_keys": "list",
        "create": "create",
        "get_key": "get",
        "revoke": "revoke",
    }
    allow_browser_login = True
    openapi_spec_tag = "API keys"
    openapi_spec_component_schemas = (ApiKeyCreate, ApiKeyInfo, ApiKeyCreated)

    def _refuse(self, exc: DomainError):
        db.session.rollback()
        record_rejection("ab_api_key", str(exc))
        return self.response(exc.status, **exc.as_json())

    @expose("/", methods=["GET"])
    @protect()
    @safe
    def list_keys(self):
        """Every API key, newest first (never the keys themselves).
        ---
        get:
          responses:
            200:
              description: the keys
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result: {type: array, items: {$ref: '#/components/schemas/ApiKeyInfo'}}
            401: {$ref: '#/components/responses/401'}
        """
        keys = db.session.scalars(select(ApiKey).order_by(ApiKey.id.desc()))
        return self.response(200, result=[key_json(key) for key in keys])

    @expose("/", methods=["POST"])
    @protect()
    @safe
    def create(self):
        """Create a key for a user (``{"username": "ledger-sync", "name": "nightly sync"}``).
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/ApiKeyCreate'}
          responses:
            201:
              description: the key, shown only in this answer
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/ApiKeyCreated'}
            401: {$ref: '#/components/responses/401'}
            422: {$ref: '#/components/responses/422'}
        """
        body = json_body()
        try:
            created = create_key(body.get("username"), body.get("name"), body.get("expires_on"))
        except DomainError as exc:
            return self._refuse(exc)
        return self.response(201, **created)

    @expose("/<string:key_uuid>", methods=["GET"])
    @protect()
    @safe
    def get_key(self, key_uuid: str):
        """One key's details.
        ---
        get:
          parameters:
          - {in: path, name: key_uuid, required: true, schema: {type: string}}
          responses:
            200:
              description: the key's details
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/ApiKeyInfo'}
            401: {$ref: '#/components/responses/401'}
            404: {$ref: '#/components/responses/404'}
        """
        key = db.session.scalar(select(ApiKey).where(ApiKey.uuid == key_uuid))
        if key is None:
            return self.response_404()
        return self.response(200, **key_json(key))

    @expose("/<string:key_uuid>", methods=["DELETE"])
    @protect()
    @safe
    def revoke(self, key_uuid: str):
        """Revoke a key: from now on it gets 401.
        ---
        delete:
          parameters:
          - {in: path, name: key_uuid, required: true, schema: {type: string}}
          responses:
            200:
              description: revoked
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/ApiKeyInfo'}
            401: {$ref: '#/components/responses/401'}
            404: {$ref: '#/components/responses/404'}
            409: {description: revoked already}
        """
        try:
            key = revoke_key(key_uuid)
        except DomainError as exc:
            return self._refuse(exc)
        return self.response(200, **key_json(key))


# ---- flask crm api-key ... -------------------------------------------------------------------


@click.group("api-key")
def api_key_cli() -> None:
    """API keys for other systems (each acts as one user)."""


@api_key_cli.command("create")
@click.option("--user", "username", required=True, help="The user the key acts as.")
@click.option("--name", default=None, help="What the key is for (default: the user's name).")
@click.option("--expires", default=None, help="Last day the key works (YYYY-MM-DD).")
@with_appcontext
def create_command(username: str, name: str | None, expires: str | None) -> None:
    """Create a key and print it (it is shown only this once)."""
    try:
        created = create_key(username, name or f"{username} API key", expires)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    click.echo(f"API key {created['uuid']} for {created['username']} ({created['name']}):")
    click.echo(created["key"])
    click.echo("Send it as 'Authorization: Bearer <key>'. It is not shown again.")


@api_key_cli.command("revoke")
@click.argument("key_uuid")
@with_appcontext
def revoke_command(key_uuid: str) -> None:
    """Revoke a key by its uuid."""
    try:
        key = revoke_key(key_uuid)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    click.echo(f"API key {key.uuid} ({key.name}) of {key.user.username} revoked.")


@api_key_cli.command("list")
@with_appcontext
def list_command() -> None:
    """Every key: uuid, user, name, state."""
    for key in db.session.scalars(select(ApiKey).order_by(ApiKey.id)):
        state = "active" if key.is_active else ("revoked" if key.revoked_on else "expired")
        click.echo(f"{key.uuid}  {key.user.username:<20} {state:<8} {key.name}")
