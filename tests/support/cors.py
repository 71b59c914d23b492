"""The CORS preflight the reader-facing POST endpoints answer."""

from __future__ import annotations

STRANGER = "https://evil.example"  # an origin no test app allows


def assert_post_preflight(client, path: str, origin: str):
    """A preflight from `origin` for a JSON POST to `path` is allowed, and one from a
    stranger's origin is answered without allowing anything. Returns the allowed answer."""
    allowed = client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == origin
    assert allowed.headers["Access-Control-Allow-Methods"] == "POST"
    assert allowed.headers["Access-Control-Allow-Headers"] == "Content-Type"
    refused = client.options(path, headers={"Origin": STRANGER})
    assert refused.status_code == 204
    assert "Access-Control-Allow-Methods" not in refused.headers
    assert "Access-Control-Allow-Origin" not in refused.headers
    return allowed
