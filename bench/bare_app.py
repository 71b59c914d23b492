"""The benchmarks' baseline: a bare Flask app, run under the same gunicorn settings.

- `POST /webhooks/stripe` only reads the body (bench/webhooks.py).
- `GET /bare` returns a constant JSON read from the file named by BENCH_BODY_FILE,
  the banner's own body, so both answer the same number of bytes (bench/banner.py).
"""

import json
import os

from flask import Flask, jsonify, request

app = Flask(__name__)
app.json.sort_keys = False

BODY = None
if os.environ.get("BENCH_BODY_FILE"):
    with open(os.environ["BENCH_BODY_FILE"], encoding="utf-8") as fh:
        BODY = json.load(fh)


@app.get("/bare")
def bare():
    return jsonify(BODY)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/webhooks/stripe")
def webhook():
    body = request.get_data()
    return jsonify(received=len(body))


if __name__ == "__main__":
    # Served exactly as `membership serve` serves the app: same gunicorn options.
    import argparse

    from membership.cli.serve import WsgiServer, gunicorn_options

    parser = argparse.ArgumentParser(description="the benchmarks' bare Flask baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    options = gunicorn_options("127.0.0.1", args.port, args.workers, args.threads)
    WsgiServer(lambda: app, {**options, "loglevel": "warning"}).run()
