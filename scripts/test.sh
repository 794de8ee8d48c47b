#!/usr/bin/env bash
# Run every test: lint, a full build of the book with warnings as errors and every notebook
# re-executed, then pytest: the unit tests, every notebook (nbval), and the browser tests, which
# open every page of that build in Chromium with the network blocked (tests/browser/).
# Screenshots of each chapter's first page land in tests/browser/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# (no MPLBACKEND here: notebook kernels would inherit it and lose their inline figures)
export PYTHONHASHSEED=0
# Training loops print one summary line per run instead of a progress bar (lossbook.utils.progress).
export LOSSBOOK_PROGRESS=summary
bash scripts/install.sh
bash scripts/install_browser.sh

start=$(date +%s)
echo "== ruff"
"$PY" -m ruff check lossbook tests benchmarks book/_ext scripts

echo "== the book: a fresh build (cache cleared, every notebook executed, warnings are errors)"
# Both caches go: with only the execution cache cleared, Sphinx's doctrees still say every page is
# current, no notebook runs and -W checks nothing. --all rebuilds every page.
rm -rf _build/.jupyter_cache _build/.doctrees
"$PY" -c "from jupyter_book.cli.main import main; main()" build . -W -n --keep-going --all
built=$(date +%s)
echo "== book built in $(( built - start )) s"

echo "== pytest: unit tests, every notebook (nbval), the browser tests on _build/html"
rm -rf tests/browser/artifacts
LOSSBOOK_HTML="$PWD/_build/html" "$PY" -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile -q "$@"

"$PY" - <<'PYEOF'
import json, pathlib
stats = [json.loads(p.read_text()) for p in pathlib.Path("tests/browser/artifacts/stats").glob("*.json")]
if stats:
    total = {k: sum(s[k] for s in stats) for k in ("formulas", "images", "figures", "internal_links")}
    print(f"== browser: {len(stats)} pages checked, {total['formulas']} formulas typeset, "
          f"{total['images']} images loaded, {total['figures']} captioned figures, "
          f"{total['internal_links']} internal links resolved (screenshots: tests/browser/artifacts/)")
PYEOF
echo "== all tests passed in $(( $(date +%s) - start )) s (book $(( built - start )) s, pytest $(( $(date +%s) - built )) s)"
