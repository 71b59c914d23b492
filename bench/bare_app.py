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
