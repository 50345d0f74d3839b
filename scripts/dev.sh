#!/usr/bin/env bash
# Run the whole service locally in the foreground (broker, Redis, S3, API, consumers, web UI).
# Arguments go to `stylequeue dev` (e.g. --api-port 8080); Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/stylequeue dev "$@"
