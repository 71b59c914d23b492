"""The benchmarks' baseline: a bare Flask app, under `membership serve`'s server or gunicorn.

    bench/bare_app.py --port P [--server granian|gunicorn] [--app bare|service|service-bare]

`--server granian` (default) runs it exactly as `membership serve` runs the app;
`--server gunicorn` runs it as a threaded server would (gthread,
keep-alive 5 s), the baseline the benchmarks compare against. `--app service`
serves the real app instead (REDIS_URL from the environment): the slow-clients
benchmark's "our app on yesterday's server". `--app service-bare` serves the real app with
`POST /bare` added: what the service's per-request work (the outer layer: metrics, request
id, security headers, body limits) and Flask's cost beside the bare app, apart from any
endpoint's work (bench/prompt.py).

- `POST /webhooks/stripe` only reads the body (bench/webhooks.py).
- `GET /bare` returns a constant JSON read from the file named by BENCH_BODY_FILE,
  the banner's own body, so both answer the same number of bytes (bench/banner.py).
- `POST /bare` parses the JSON body, as /v1/prompt does, and returns that same constant
  JSON: a prompt answer of the same size (bench/prompt.py).
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


@app.post("/bare")
def bare_post():
    request.get_json()
    return jsonify(BODY)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/webhooks/stripe")
def webhook():
    body = request.get_data()
    return jsonify(received=len(body))


class Gunicorn:
    """gunicorn in-process with `membership serve`'s former settings (gthread, keep-alive 5 s)."""

    @staticmethod
    def options(port: int, workers: int, threads: int) -> dict:
        return {
            "bind": f"127.0.0.1:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 30,
            "graceful_timeout": 20,
            "keepalive": 5,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "membership-baseline",
            "control_socket_disable": True,
        }

    @staticmethod
    def run(load, options: dict) -> None:
        from gunicorn.app.base import BaseApplication

        class App(BaseApplication):
            def load_config(self):
                for key, value in options.items():
                    if key in self.cfg.settings:
                        self.cfg.set(key, value)

            def load(self):
                return load()

        App().run()


def _load_service():
    from membership.cli.serve import _create_app
    from membership.core.config import load_settings

    return _create_app(load_settings())


def _load_service_with_bare():
    service = _load_service()
    service.add_url_rule("/bare", "bench_bare", bare_post, methods=["POST"])
    return service


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the benchmarks' bare Flask baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--server", choices=["granian", "gunicorn"], default="granian")
    parser.add_argument("--app", choices=["bare", "service", "service-bare"], default="bare")
    args = parser.parse_args()
    load = {"service": _load_service, "service-bare": _load_service_with_bare}.get(
        args.app, lambda: app
    )
    if args.server == "gunicorn":
        Gunicorn.run(load, Gunicorn.options(args.port, args.workers, args.threads))
    else:
        from membership.cli.server import run

        run(
            load,
            host="127.0.0.1",
            port=args.port,
            workers=args.workers,
            threads=args.threads,
            log_level="warning",
        )
