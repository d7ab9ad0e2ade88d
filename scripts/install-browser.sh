#!/usr/bin/env bash
# Debian's chromium for the console's browser tests (tests/app/test_console.py): Playwright drives it, and cannot
# download a browser of its own here. Idempotent: does nothing when /usr/bin/chromium is there.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    sudo=(sudo)
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium
