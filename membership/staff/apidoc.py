"""What every staff area's OpenAPI piece is built from (besides core/openapi.py): an
operation behind a staff token, the 401 every one of them answers, and parameters."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from membership.core.openapi import NOT_JSON, TEXT, error, too_large

SIGNED_OUT = error("No valid token or session")


def op(summary: str, responses: dict, **extra) -> dict:
    """A /staff/api/ operation: a staff token or session (401 without), its answers."""
    responses = {**responses, "401": SIGNED_OUT}
    return {"summary": summary, "security": [{"staffToken": []}], "responses": responses, **extra}


def in_path(name: str, pattern: str | None = None, description: str | None = None) -> dict:
    schema = {**TEXT, "pattern": pattern} if pattern else TEXT
    described = {"description": description} if description else {}
    return {"name": name, "in": "path", "required": True, **described, "schema": schema}


def in_query(name: str, schema: dict, description: str | None = None, **extra) -> dict:
    described = {"description": description} if description else {}
    return {"name": name, "in": "query", **extra, **described, "schema": schema}


def read_refusals(size: str) -> dict:
    """What reading a JSON body refuses before its fields are looked at (413, 415)."""
    return {"413": too_large(size), "415": error(NOT_JSON)}


def query_parameters(schema: type) -> list[dict]:
    """The query parameters a marshmallow schema reads (apispec), as it validates them."""
    plugin = MarshmallowPlugin(schema_name_resolver=lambda _: None)
    APISpec("membership", "0", "3.1.0", plugins=[plugin])
    return plugin.converter.schema2parameters(schema, location="query")
