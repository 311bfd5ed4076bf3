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
    # merge into a copy and compare, ignoring the template's creation date (pybabel's own
    # `update --check` counts a new date as a change); then every message must be translated
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cp -R "$LOCALE"/. "$tmp"/
    "$PYBABEL" -q update -i "$POT" -d "$tmp" -D relaycheck --no-wrap --ignore-obsolete
    status=0
    for po in "$LOCALE"/*/LC_MESSAGES/relaycheck.po; do
        if ! diff -q -I '^"POT-Creation-Date:' "$po" "$tmp/${po#"$LOCALE"/}" >/dev/null; then
            echo "out of date: $po (run: bash scripts/catalogues.sh)" >&2
            status=1
        fi
    done
    "${PYTHON:-.venv/bin/python}" - "$LOCALE" <<'PY' || status=1
import pathlib, sys
from babel.messages.pofile import read_po
bad = 0
for po in sorted(pathlib.Path(sys.argv[1]).glob("*/LC_MESSAGES/relaycheck.po")):
    with po.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if message.id and (message.fuzzy or not all(strings)):
            print(f"{po}: untranslated or fuzzy: {message.id!r}", file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
PY
    exit "$status"
fi
"$PYBABEL" -q update -i "$POT" -d "$LOCALE" -D relaycheck --no-wrap --ignore-obsolete
"$PYBABEL" -q compile -d "$LOCALE" -D relaycheck --statistics
