#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Linux machine, then runs all of it:
# a virtualenv with the package and its test extras, Debian's Chromium for the
# browser tests (Playwright drives it; no browser download), ruff, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check membership tests bench
exec .venv/bin/pytest "$@"
