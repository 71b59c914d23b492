#!/usr/bin/env bash
# Screenshots of every staff dashboard page (1280 and 375 px) and of each prompt placement on
# the demo article on a phone, into DIR (default screenshots/): scripts/screenshots.py says how.
#   scripts/screenshots.sh [DIR] [--quick] [--members N]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/screenshots.py "$@"
