#!/usr/bin/env bash
# Installs what the tests need into .venv and runs the whole suite (lint, types, tests).
source "$(dirname "$0")/bootstrap.sh" test
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy --no-error-summary
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
