"""The OpenAPI document at ``/api/v1/_openapi`` and the Swagger UI at ``/swagger/v1``.

FAB builds the document from every API's docstrings and schemas; a few of its generic parts do
not describe what the APIs answer (list ``ids`` typed as text while the keys are numbers, error
answers of routes that declare none). ``CrmOpenApi`` builds the document as FAB does, then
corrects those parts in one place, so clients and the schemathesis run read a true contract.
Swagger UI is FAB's own bundle, served by the app (no CDN).
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app, request
from flask_appbuilder.api import BaseApi, expose, protect, safe
from flask_appbuilder.api.manager import OpenApi, SwaggerView, resolver

ERROR_BODY = {
    "type": "object",
    "properties": {
        "message": {
            "description": "what was refused and why: a sentence, or field -> reasons",
            "oneOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": {"type": "array"}},
            ],
        },
        "existing": {"type": "object", "description": "the record a duplicate clashes with"},
    },
}
"""Every 4xx answer: ``{"message": "..."}`` or ``{"message": {field: [reasons]}}``."""

# Answers any protected route can give, whatever its docstring declares.
COMMON_ERRORS = {
    "400": "Bad request (not JSON, or an unreadable query)",
    "401": "Not signed in, or the token or API key is invalid",
    "403": "Signed in, but the role may not do this",
    "404": "No such record, or outside your rows",
    "405": "Method not allowed",
    "409": "Conflicts with the record's state or another record",
    "422": "A field is refused; the message names it",
}
HTTP_METHODS = ("get", "post", "put", "delete", "patch")


def _integer_key(path_item: dict[str, Any]) -> bool:
    for operation in path_item.values():
        if not isinstance(operation, dict):
            continue
        for parameter in operation.get("parameters", []):
            if parameter.get("name") == "pk" and parameter.get("in") == "path":
                return parameter.get("schema", {}).get("type") == "integer"
    return False


def _decimals_as_text(schema: dict[str, Any]) -> None:
    """Money, quantities and rates are answered as exact decimal text ("5000.00"), never as
    binary floating point; the generated schemas call them numbers."""
    for field in schema.get("properties", {}).values():
        if field.get("type") == "number":
            field["type"] = "string"
            field["format"] = "decimal"


FAB_SECURITY_SCHEMAS = (
    "CrmUserApi",
    "CrmRoleApi",
    "CrmGroupApi",
    "CrmPermissionApi",
    "CrmViewMenuApi",
    "CrmPermissionViewMenuApi",
    "ApiKey",
)
"""FAB's own tables keep naive local timestamps and nested rows with more fields than their
schemas list; their API keys may have no scopes or expiry."""


def _loosen_fab_schema(schema: dict[str, Any], nullable: bool) -> None:
    schema.pop("additionalProperties", None)
    for field in schema.get("properties", {}).values():
        if "$ref" in field:  # a related row (created_by) or rows (roles, groups), or none
            ref = {"$ref": field.pop("$ref")}
            field.update(anyOf=[ref, {"type": "array", "items": ref}], nullable=True)
            continue
        for variant in [field, *field.get("anyOf", [])]:
            if variant.get("format") == "date-time":
                del variant["format"]
        if nullable and "type" in field:
            field["nullable"] = True


def _declare_path_parameters(path: str, operation: dict[str, Any]) -> None:
    """Every ``{name}`` of the path declared (custom routes' docstrings often leave them out):
    record ids (``pk``, ``fee_id``) are integers, other names (a currency code) text."""
    parameters = operation.setdefault("parameters", [])
    declared = {p.get("name") for p in parameters if p.get("in") == "path"}
    for name in re.findall(r"{(\w+)}", path):
        if name not in declared:
            kind = "integer" if name == "pk" or name.endswith("_id") else "string"
            parameters.append(
                {"in": "path", "name": name, "required": True, "schema": {"type": kind}}
            )


def _json_schema(response: dict[str, Any]) -> dict[str, Any]:
    return response.get("content", {}).get("application/json", {}).get("schema", {})


def correct_document(document: dict[str, Any]) -> dict[str, Any]:
    """Make FAB's generated document say what the APIs answer (see the module docstring)."""
    paths = document.get("paths", {})
    components = document.setdefault("components", {})
    for name, schema in components.get("schemas", {}).items():
        if name.endswith((".get", ".get_list")):  # what GET answers, not what POST/PUT take
            _decimals_as_text(schema)
        if name.startswith(FAB_SECURITY_SCHEMAS):
            _loosen_fab_schema(schema, nullable=name.startswith("ApiKey"))
    components.setdefault("schemas", {})["CrmError"] = ERROR_BODY
    for response in components.get("responses", {}).values():
        content = response.get("content", {}).get("application/json")
        if content is not None:
            content["schema"] = {"$ref": "#/components/schemas/CrmError"}
    for path, item in paths.items():
        keyed = paths.get(path.rstrip("/") + "/{pk}", {})
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            _declare_path_parameters(path, operation)
            ok = responses.get("200", {})
            listing = (
                ok.get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("properties", {})
            )
            integer_key = _integer_key(item) or _integer_key(keyed)
            if method == "get" and "ids" in listing:
                listing["ids"]["items"] = {"type": "integer"} if integer_key else {}
            for status in ("200", "201"):
                body = _json_schema(responses.get(status, {})).get("properties", {})
                if integer_key and body.get("id", {}).get("type") == "string":
                    body["id"]["type"] = "integer"
            if path.endswith("/_info") and method == "get":
                for key in ("add_columns", "edit_columns"):
                    if key in listing:  # FAB answers a list of column descriptions
                        listing[key] = {"type": "array", "items": {"type": "object"}}
            if path.endswith("/menu/") and method == "get":
                menu = listing.get("result", {}).get("items", {}).get("properties", {})
                if "childs" in menu:  # a separator is the text "-"
                    menu["childs"]["items"] = {}
            for status, description in COMMON_ERRORS.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/CrmError"}
                            }
                        },
                    },
                )
    return document


def unique_schema_names() -> Any:
    """FAB's schema names, told apart where two schemas get the same one: a list showing two
    links to the same model ("created_by.id", "changed_by.id") nests two schemas named after
    the list and the model. The second gets a number, in the order the document is built."""
    given: dict[str, list[type]] = {}

    def name_of(schema: Any) -> str:
        from apispec.ext.marshmallow.common import resolve_schema_cls

        cls = resolve_schema_cls(schema)
        name = resolver(schema)
        holders = given.setdefault(name, [])
        if cls not in holders:
            holders.append(cls)
        number = holders.index(cls)
        return f"{name}{number + 1}" if number else name

    return name_of


class CrmOpenApi(OpenApi):
    """FAB's OpenAPI view, answering the corrected document."""

    class_permission_name = "OpenApi"

    @staticmethod
    def _create_api_spec(version: str) -> APISpec:
        """FAB's document, with schema names that are unique without apispec renaming them
        (and warning) on its own."""
        return APISpec(
            title=current_app.appbuilder.app_name,
            version=version,
            openapi_version="3.0.2",
            info={"description": current_app.appbuilder.app_name},
            plugins=[MarshmallowPlugin(schema_name_resolver=unique_schema_names())],
            servers=current_app.config.get("FAB_OPENAPI_SERVERS", [{"url": request.host_url}]),
        )

    @expose("/<version>/_openapi")
    @protect()
    @safe
    def get(self, version: str):
        """The OpenAPI document of one API version.
        ---
        get:
          parameters:
          - {in: path, name: version, required: true, schema: {type: string}}
          responses:
            200:
              description: The OpenAPI document
              content:
                application/json:
                  schema: {type: object}
            404: {$ref: '#/components/responses/404'}
        """
        api_spec = self._create_api_spec(version)
        found = False
        for view in current_app.appbuilder.baseviews:
            if isinstance(view, BaseApi) and view.version == version:
                view.add_api_spec(api_spec)
                found = True
        if not found:
            return self.response_404()
        return self.response(200, **correct_document(api_spec.to_dict()))


class CrmSwaggerView(SwaggerView):
    """FAB's Swagger UI page (its own bundled JavaScript and CSS, no CDN)."""

    class_permission_name = "SwaggerView"
