"""WSGI entry point: `gunicorn membership.wsgi:app`."""

import gc

from membership import create_app

app = create_app()
gc.collect()
gc.freeze()  # as membership serve's workers do (server.py): full collections skip the app
