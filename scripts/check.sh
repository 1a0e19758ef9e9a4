#!/usr/bin/env bash
# The one test command: install with every extra, lint, check formatting, run the tests.
# Arguments go to pytest, e.g. the fast tier: bash scripts/check.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e ".[all,dev]"
python -m ruff check .
python -m ruff format --check .
python -m pytest -q "$@"
