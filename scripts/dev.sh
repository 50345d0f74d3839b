#!/usr/bin/env bash
# Run the whole service locally in the foreground (broker, Redis, S3, API, consumers, web UI).
# Arguments go to `stylequeue dev` (e.g. --api-port 8080); Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the built UI depends on: a change to any of these makes frontend/dist stale.
UI_SOURCES=(frontend/src frontend/public frontend/index.html frontend/vite.config.ts
  frontend/svelte.config.js frontend/package.json frontend/package-lock.json)

# True when frontend/dist/index.html is missing or older than a UI source file.
ui_stale() {
  local built=frontend/dist/index.html existing=() path
  [ -f "$built" ] || return 0
  for path in "${UI_SOURCES[@]}"; do
    [ -e "$path" ] && existing+=("$path")
  done
  [ -n "$(find "${existing[@]}" -type f -newer "$built" -print -quit)" ]
}

bash scripts/bootstrap.sh

# `stylequeue dev` builds the UI only when there is none; rebuild here when it is out of date too,
# so the UI served is always the one in the sources. Skipped with --no-ui (nothing is served).
if [ -f frontend/package.json ] && [[ " $* " != *" --no-ui "* ]] && ui_stale; then
  echo "dev: building the web UI (frontend/dist is missing or older than its sources)"
  (cd frontend && npm run build)
fi

exec .venv/bin/stylequeue dev "$@"
