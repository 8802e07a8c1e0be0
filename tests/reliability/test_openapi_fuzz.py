"""Scenario 6, part 3: the JSON API fuzzed from its own OpenAPI document.

Each operation of ``/jobs/api/openapi.json`` gets requests whose parameters are
drawn from the document's schemas (so they reach past the first 400) or are
hostile values; every answer must be one the document lists, never a 500, and
a 200 must carry the fields the schema requires.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobs_app
from reliability import tasks
from reliability.conftest import report, scaled
from reliability.test_fuzz import INJECTIONS

HOSTILE = st.sampled_from(INJECTIONS) | st.text(st.characters(codec="utf-8"), max_size=40)


def _from_schema(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """Values that satisfy ``schema``, as query strings."""
    if "enum" in schema:
        return st.sampled_from([str(v) for v in schema["enum"]])
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63)
        return st.integers(low, high).map(str)
    if schema.get("format") == "date-time":
        return st.datetimes().map(lambda d: d.isoformat())
    return st.text(st.characters(codec="utf-8"), max_size=min(schema.get("maxLength", 50), 50))


def _resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    ref = item.get("$ref")
    if not ref:
        return item
    node: Any = document
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return _resolve(document, node)


def test_api_fuzzed_from_its_openapi_document(
    app: Flask, ctx: None, client: Any, work: Any, database_url: str
) -> None:
    answer = client.get("/jobs/api/openapi.json")
    if answer.status_code == 404:
        pytest.skip("no OpenAPI document on this branch")
    document = answer.get_json()
    tasks.echo_back.enqueue("x")
    jobs_app.fail.enqueue("boom")
    known_id = jobs_app.add.enqueue(1, 2).id
    work()
    server = document.get("servers", [{"url": ""}])[0]["url"].rstrip("/")
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            parameters = [_resolve(document, p) for p in operation.get("parameters", [])]
            codes = {str(c) for c in operation.get("responses", {})}
            ok = _resolve(document, operation.get("responses", {}).get("200", {}))
            schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
            required = _resolve(document, schema).get("required", [])
            operations.append((method, path, parameters, codes, required))
    assert operations
    seen: dict[int, int] = {}

    @settings(
        max_examples=scaled(10_000, 500),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        method, path, parameters, codes, required = data.draw(st.sampled_from(operations))
        url, query = server + path, []
        for parameter in parameters:
            schema = parameter.get("schema", {})
            value = data.draw(
                _from_schema(schema) | HOSTILE | st.just(known_id), label=parameter["name"]
            )
            if parameter["in"] == "path":
                url = url.replace("{" + parameter["name"] + "}", quote(value or "x", safe=""))
            elif parameter.get("required") or data.draw(st.booleans()):
                query.append((parameter["name"], value))
        got = client.open(url + "?" + urlencode(query), method=method.upper())
        seen[got.status_code] = seen.get(got.status_code, 0) + 1
        assert got.status_code < 500, (method, url, query, got.get_data(as_text=True)[:300])
        assert str(got.status_code) in codes | {"404"}, (method, url, query, got.status_code)
        if got.status_code == 200:
            body = got.get_json()
            assert all(field in body for field in required), (url, required, list(body))

    one()
    report(
        f"OpenAPI fuzz ({database_url.split(':')[0]}): {sum(seen.values())} requests over "
        f"{len(operations)} operations of /jobs/api/openapi.json, statuses "
        f"{dict(sorted(seen.items()))}: 0 server errors, every status documented"
    )
