#!/usr/bin/env bash
# The one test command: install with every extra (and pyqlib, for the Qlib reader comparison), lint, check
# formatting, run the tests, then build the documentation site strictly (a broken link or reference fails).
# Arguments go to pytest, e.g. the fast tier: bash scripts/check.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e ".[all,dev,qlib]"
python -m ruff check .
python -m ruff format --check .
python -m pytest -q "$@"
site_dir="$(mktemp -d)"
trap 'rm -rf "$site_dir"' EXIT
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir "$site_dir"
