#!/usr/bin/env bash
# Build the book to HTML (installing what it needs first).
#   bash scripts/book.sh            build into _build/html
#   bash scripts/book.sh --serve    build, then serve it on http://127.0.0.1:8000
# Notebooks are executed during the build; unchanged notebooks come from the execution cache.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install.sh
# Training loops print one summary line per run instead of a progress bar (lossbook.utils.progress).
export LOSSBOOK_PROGRESS=summary
"$PY" -c "from jupyter_book.cli.main import main; main()" build . -W -n --keep-going
echo
echo "The book is at: file://$PWD/_build/html/index.html"
if [[ "${1:-}" == "--serve" ]]; then
  echo "Serving on http://127.0.0.1:${PORT:-8000} (Ctrl-C to stop)"
  exec "$PY" -m http.server "${PORT:-8000}" --bind 127.0.0.1 --directory _build/html
fi
