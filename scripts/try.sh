#!/usr/bin/env bash
# Quick start: install relaycheck into .venv, explain the KB 3169958 scenarios on the built-in
# Contoso example tenant, then run the demo (scheduled checks and alerts, all on loopback).
# No Slack tokens, no network: the example's connector certificate is a file.
source "$(dirname "$0")/bootstrap.sh"
example=examples/contoso/relaycheck.toml
# Each command is printed shell-quoted, so it can be pasted back as it is.
quote() {
    if [[ $1 =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}
run() {
    local line="\$ relaycheck" arg
    for arg in "$@"; do line+=" $(quote "$arg")"; done
    echo "$line"
    .venv/bin/relaycheck "$@"
    echo
}
run config check "$example"
run explain --config "$example" "<> -> john@fabrikam.com"
run explain --config "$example" "app@fabrikam.com -> someone@tailspintoys.com"
run explain --config "$example" "kate@contoso.com -> kate@tailspintoys.com"
echo "# The same tenant before the fix (IP connector only):"
run explain --config examples/contoso-ip-only/relaycheck.toml "john@fabrikam.com -> kate@tailspintoys.com"
echo "# And the whole chain on loopback: a smart host, two scheduled runs around a bad renewal,"
echo "# the alerts (printed here, as 'serve' does without Slack tokens) and the bounce it causes:"
run demo
