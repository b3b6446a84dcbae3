#!/usr/bin/env bash
# Set up everything (scripts/setup.sh), then run the whole gate: ruff, mypy --strict,
# and the test suite (root-only network-namespace tests included; run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== mypy --strict (package)"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
