#!/usr/bin/env bash
# Run every test: lint, the unit tests, every notebook of the book (nbval), and a full build of
# the book with warnings as errors and every notebook re-executed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export MPLBACKEND=Agg PYTHONHASHSEED=0
bash scripts/install.sh

start=$(date +%s)
echo "== ruff"
"$PY" -m ruff check lossbook tests benchmarks book/_ext scripts

echo "== the book: a fresh build (cache cleared, every notebook executed, warnings are errors)"
rm -rf _build/.jupyter_cache
"$PY" -m jupyter_book build . -W -n --keep-going

echo "== pytest: unit tests and every notebook (nbval)"
"$PY" -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile -q "$@"

echo "== all tests passed in $(( $(date +%s) - start )) s"
