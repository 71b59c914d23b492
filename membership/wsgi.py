"""WSGI entry point: `gunicorn membership.wsgi:app`.

With REDIS_URL unset it uses the embedded Redis of the `membership serve` running on
the same MEMBERSHIP_DATA_DIR, and stops at start-up when none runs: only that server
starts, restarts and stops the embedded Redis (create_app).
"""

import gc

from membership import create_app

app = create_app()
gc.collect()
gc.freeze()  # as membership serve's workers do (server.py): full collections skip the app
