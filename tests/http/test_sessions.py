from flask import session


def test_a_session_written_by_a_handler_round_trips_signed(app):
    @app.get("/_test/login")
    def login():
        session["staff"] = "olena"
        return {"ok": True}

    @app.get("/_test/whoami")
    def whoami():
        return {"staff": session.get("staff")}

    client = app.test_client()
    assert client.get("/_test/whoami").get_json() == {"staff": None}
    response = client.get("/_test/login")
    assert "session=" in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    assert client.get("/_test/whoami").get_json() == {"staff": "olena"}


def test_a_forged_session_cookie_is_ignored(app):
    @app.get("/_test/whoami")
    def whoami():
        return {"staff": session.get("staff")}

    client = app.test_client()
    client.set_cookie("session", "eyJzdGFmZiI6ImV2ZSJ9.forged.signature")
    assert client.get("/_test/whoami").get_json() == {"staff": None}


def test_requests_without_a_cookie_set_none(client):
    response = client.get("/healthz")
    assert "Set-Cookie" not in response.headers
