"""The shapes every area's OpenAPI piece is built from; membership/openapi.py merges the pieces.

An area describes its public paths in a module-level `OPENAPI` (paths, written by hand) and,
when it has components, `openapi_schemas(settings)` (generated from its validators where
there are any; `settings` is None for the document of no deployment in particular).
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from membership.core.config import SUPPORTED_LOCALES
from membership.core.i18n import LOCALE_TAG, LOCALE_TAG_MAX

REF = "#/components/schemas/{name}"
TEXT = {"type": "string"}
INTEGER = {"type": "integer"}
HTML = {"text/html": {"schema": TEXT}}
RETRY_AFTER = {"Retry-After": {"schema": INTEGER}}
NOT_MODIFIED = {"description": "Not modified"}
NOT_JSON = "Not Content-Type: application/json"


def ref(name: str) -> dict:
    return {"$ref": REF.format(name=name)}


ERROR = ref("Error")
LOCALE_QUERY = {
    "name": "locale",
    "in": "query",
    "required": False,
    "description": "Language of the copy: any locale tag (en-US, uk_UA.UTF-8) is reduced to "
    "a language served (uk-UA: uk), one we do not speak gets English.",
    "schema": {
        "type": "string",
        "default": "en",
        "pattern": f"^(?:{LOCALE_TAG.pattern})?$",
        "maxLength": LOCALE_TAG_MAX,
        "examples": list(SUPPORTED_LOCALES),
    },
}


def obj(properties: dict, required: tuple[str, ...] | None = None, **extra) -> dict:
    """An object schema; `required` names the required properties (all of them when None)."""
    schema: dict = {"type": "object"}
    required = tuple(properties) if required is None else required
    if required:
        schema["required"] = list(required)
    return {**schema, "properties": properties, **extra}


def nullable(schema: dict) -> dict:
    return {"oneOf": [{"type": "null"}, schema]}


def answer(description: str, schema: dict | None = None, media: str = "application/json") -> dict:
    """A response: its description and, given a schema, its one content type."""
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {media: {"schema": schema}}}


def error(description: str, *, retry: bool = False, html: bool = False) -> dict:
    """An error answer (the Error body; `retry`: with Retry-After; `html`: or a page)."""
    response = answer(description, ERROR)
    if html:
        response["content"].update(HTML)
    if retry:
        response["headers"] = RETRY_AFTER
    return response


def retry_later(description: str) -> dict:
    """A 429 or 503 that says when to try again (Retry-After)."""
    return error(description, retry=True)


def too_large(size: str) -> dict:
    return error(f"Body over {size}")


def json_body(schema: dict, *media: str, **extra) -> dict:
    """A required request body of `schema`, as JSON and any other `media` given."""
    types = ("application/json", *media)
    return {"required": True, **extra, "content": {m: {"schema": schema} for m in types}}


def _anchored(pattern: str) -> str:
    """A marshmallow Regexp (re.match: from the start; `\\Z`: the very end) as JSON Schema."""
    body = pattern.removesuffix(r"\Z")
    return f"^(?:{body})" + (r"(?!\n)$" if body != pattern else "")


def _anchor_all(schema: dict) -> None:
    for field in schema.get("properties", {}).values():
        if "pattern" in field:
            field["pattern"] = _anchored(field["pattern"])
        _anchor_all(field)
        _anchor_all(field.get("items", {}))


def from_marshmallow(schema: type) -> dict:
    """The JSON Schema of a marshmallow schema's fields (apispec; nested schemas inline),
    its Regexp patterns as marshmallow matches them."""
    inline = MarshmallowPlugin(schema_name_resolver=lambda _: None)
    spec = APISpec("membership", "0", "3.1.0", plugins=[inline])
    spec.components.schema(schema.__name__, schema=schema)
    generated = spec.to_dict()["components"]["schemas"][schema.__name__]
    _anchor_all(generated)
    return generated
