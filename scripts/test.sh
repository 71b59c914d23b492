#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Linux machine, then runs all of it:
# a virtualenv with the package and its test extras, Debian's Chromium for the
# browser tests (Playwright drives it; no browser download), Debian's nginx for the
# tests that run deploy/'s proxy configurations (tests/system/test_compose.py runs its binary on
# free ports; on a machine with systemd the package also starts its own service on port 80:
# `systemctl disable --now nginx` if that is unwanted), ruff, import-linter, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's packages named, installed with apt-get (through sudo unless root).
apt_install() {
  local sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

# Debian's Python leaves venv (ensurepip) to a package of its own.
if ! python3 -m venv .venv >/dev/null 2>&1; then
  rm -rf .venv
  apt_install "python$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
  python3 -m venv .venv
fi
# uv (Astral's installer, from PyPI) resolves and installs the package and its test extras in a
# few seconds where pip takes about half a minute.
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv
.venv/bin/uv pip install --quiet --python .venv/bin/python -e '.[test]'

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check membership tests bench scripts
# The layers of membership/ (pyproject.toml, [tool.importlinter]): a module imports only below.
.venv/bin/lint-imports
# The suite starts many Python processes (its workers, and the servers and commands the tests
# run): let them keep compiled modules, and pytest its rewritten test modules, in __pycache__
# (ignored by git) even where the environment says not to write bytecode.
unset PYTHONDONTWRITEBYTECODE

# One pytest worker per core (pytest-xdist; more workers than cores measured no faster, as the
# fuzz and property tests keep the cores busy); each worker starts its own servers on free
# ports. pyproject's addopts add --dist worksteal.
exec .venv/bin/pytest -n auto "$@"
