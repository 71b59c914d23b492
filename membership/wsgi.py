"""WSGI entry point: `gunicorn membership.wsgi:app`."""

from membership import create_app

app = create_app()
