"""The secret key every test app is made with (tests/conftest.py's make_app), to sign or read
its tokens in a test."""

SECRET_KEY = "test-secret-key-0123456789"
