#!/usr/bin/env bash
# The whole test suite from nothing: install, then run every test (unit, integration, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ -f frontend/package.json ]; then
  (cd frontend && npm run check && npm test)
fi
exec .venv/bin/python -m pytest "$@"
