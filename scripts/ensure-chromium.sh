#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (never a downloaded browser build). Install it when missing and
# we may (root with apt); otherwise say how, and the browser tests skip (on CI they fail instead).
set -euo pipefail
CHROMIUM=${STUDIO_CHROMIUM:-/usr/bin/chromium}
if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "Installing Chromium for the browser tests (Debian package, about a minute)..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "Chromium not found at $CHROMIUM: browser tests will be skipped." >&2
echo "Install it with 'sudo apt-get install chromium' or point STUDIO_CHROMIUM at a Chromium binary." >&2
