"""The baseline for bench/banner.py: a bare Flask endpoint returning a constant JSON.

The constant is read from the file named by BENCH_BODY_FILE (the banner's own body,
so both answer the same number of bytes). Run under gunicorn with the same settings
as `membership serve`.
"""

import json
import os

from flask import Flask, jsonify

with open(os.environ["BENCH_BODY_FILE"], encoding="utf-8") as fh:
    BODY = json.load(fh)

app = Flask(__name__)
app.json.sort_keys = False


@app.get("/bare")
def bare():
    return jsonify(BODY)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
