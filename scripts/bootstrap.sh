# Sourced by the quick-start scripts: makes .venv with the project installed.
# Usage: source scripts/bootstrap.sh [EXTRAS]   (EXTRAS e.g. "test")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "relaycheck needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 2
fi
if [[ ! -x .venv/bin/python ]]; then
    if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
        # Debian ships venv separately; install it when we may.
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            rm -rf .venv
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            "$PYTHON" -m venv .venv
        else
            echo "cannot create a virtualenv: install python3-venv" >&2
            exit 2
        fi
    fi
fi
spec="."
[[ -n "${1:-}" ]] && spec=".[$1]"
log=.venv/install.log
if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
       .venv/bin/python -m pip install --disable-pip-version-check -e "$spec"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "installing relaycheck failed (log above, also in $log)" >&2
    exit 1
fi
