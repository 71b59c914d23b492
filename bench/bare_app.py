"""The benchmark's baseline: a bare Flask app whose webhook endpoint only reads the body."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/webhooks/stripe")
def webhook():
    body = request.get_data()
    return jsonify(received=len(body))
