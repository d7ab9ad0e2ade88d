#!/usr/bin/env bash
# Create the virtualenv and install the project with its development tools, saying what it does meanwhile:
# a cold install takes a minute or more, and a silent terminal looks stuck.
# Usage: scripts/install-venv.sh VENV PYTHON
set -euo pipefail

VENV="${1:-.venv}"
PYTHON="${2:-python3}"

echo "install: creating $VENV and installing mq-service with its development tools (a minute or two the first time)"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# pip's own lines, one per package, condensed to a counter; anything else (warnings, errors) shown as it comes.
"$VENV/bin/pip" install --progress-bar off -e '.[dev]' 2>&1 | awk '
    /^(Collecting|Requirement already satisfied)/ { n++; if (n % 10 == 0) { printf "install: %d packages resolved\n", n; fflush() } next }
    /^Installing collected packages/ { printf "install: %d packages resolved; installing them\n", n; fflush(); next }
    /^Successfully installed/ { next }
    /^ / || /^(Obtaining|Downloading|Using cached|Building|Created wheel|Stored in|Preparing|Checking|Getting requirements|Installing build|Attempting|Found existing|Uninstalling|Looking in|Processing|Successfully built)/ { next }
    { print; fflush() }
'
echo "install: $VENV is ready"
