#!/usr/bin/env bash
# Re-extract the messages, merge them into every catalogue and compile the .mo files.
# Usage: bash scripts/catalogues.sh          (after adding or changing a message)
#        bash scripts/catalogues.sh --check  (fail when a catalogue is out of date; tests do too)
# New or changed msgids arrive in checks/locale/<lang>/LC_MESSAGES/relaycheck.po with an empty
# or fuzzy msgstr: translate them there, then run this script again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
LOCALE=checks/locale
POT=$LOCALE/relaycheck.pot
"$PYBABEL" -q extract -F babel.cfg -k N_ -k ngettext:1,2 --no-wrap --no-location --sort-output \
    --project relaycheck --copyright-holder "relaycheck contributors" -o "$POT" checks bot
if [[ "${1:-}" == "--check" ]]; then
    exec "$PYBABEL" -q update --check -i "$POT" -d "$LOCALE" -D relaycheck --no-wrap --ignore-obsolete
fi
"$PYBABEL" -q update -i "$POT" -d "$LOCALE" -D relaycheck --no-wrap --ignore-obsolete
"$PYBABEL" -q compile -d "$LOCALE" -D relaycheck --statistics
