"""The OpenAPI document is a well-formed OpenAPI 3 document, and Swagger UI loads everything
it needs from the app itself (no CDN): it works offline."""

from __future__ import annotations

import re

from app.extensions import db
from tests.support import api_token, login, make_branch, make_staff

METHODS = ("get", "post", "put", "delete", "patch")


def _resolve(document: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        assert part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_the_document_is_well_formed_openapi_3(client, app):
    make_staff("Admin", make_branch(), "doc_admin")
    db.session.commit()
    answer = client.get(
        "/api/v1/_openapi", headers={"Authorization": f"Bearer {api_token(client, 'doc_admin')}"}
    )
    assert answer.status_code == 200
    document = answer.json
    assert document["openapi"].startswith("3.0.")
    assert document["info"]["title"] == "FinCRM"
    for ref in set(_refs(document)):
        _resolve(document, ref)
    operations = 0
    for path, item in document["paths"].items():
        assert path.startswith(("/api/v1/", "/api/{version}/")), path
        for method in METHODS:
            if method not in item:
                continue
            operations += 1
            operation = item[method]
            assert operation.get("responses"), f"{method} {path} declares no answer"
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            declared |= {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
            assert set(re.findall(r"{(\w+)}", path)) <= declared, f"{method} {path}"
            for status in ("401", "403", "404", "422"):
                assert status in operation["responses"], f"{method} {path} lacks {status}"
    assert operations > 250
    for resource in ("lead", "journalentry", "loaninstalment", "walletposting", "apikey"):
        assert f"/api/v1/{resource}/" in document["paths"], resource
    money = document["components"]["schemas"]["PaymentApi.get_list"]["properties"]["amount"]
    assert money == {"type": "string", "format": "decimal"}


def test_swagger_ui_is_served_by_the_app_itself(client, app):
    make_staff("Admin", make_branch(), "swagger_admin")
    db.session.commit()
    assert login(client, "swagger_admin").status_code == 302
    page = client.get("/swagger/v1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "SwaggerUIBundle" in html and "/api/v1/_openapi" in html
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in a for a in assets)
    for asset in assets:
        assert not asset.startswith(("http:", "https:", "//")), f"loaded from outside: {asset}"
        assert client.get(asset.split("?")[0]).status_code == 200, asset
