#!/usr/bin/env bash
# Install everything the book and the tests need into the current Python environment.
# Idempotent: a second run only checks. PyTorch is installed first, so that the range in
# requirements.txt is already met and pip does not fetch a multi-GB CUDA build on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" 2>/dev/null; then
  # 2.13.0 is the CPU build this project is developed and tested with.
  "$PY" -m pip install --quiet "torch==2.13.0"
fi
"$PY" -m pip install --quiet -r requirements.txt
"$PY" -m pip install --quiet --no-deps -e .
"$PY" -m ipykernel install --user --name python3 >/dev/null 2>&1 || true

# The browser tests (tests/browser/) drive Debian's Chromium through Playwright (Playwright's own
# browser download is not used); a CJK and an emoji font let its screenshots show the glossary's
# Chinese terms and the execution-status marks.
# LOSSBOOK_CHROMIUM=/path/to/chrome uses another Chromium-based browser instead.
if [[ -z "${LOSSBOOK_CHROMIUM:-}" ]]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  if command -v fc-list >/dev/null 2>&1; then
    [[ -n "$(fc-list :lang=zh 2>/dev/null)" ]] || missing+=(fonts-wqy-zenhei)
    fc-list 2>/dev/null | grep -qi emoji || missing+=(fonts-noto-color-emoji)  # the status page's marks
  else
    missing+=(fonts-wqy-zenhei fonts-noto-color-emoji)
  fi
  if (( ${#missing[@]} )); then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo -n"
    if command -v apt-get >/dev/null 2>&1 && { [[ -z "$SUDO" ]] || sudo -n true 2>/dev/null; }; then
      echo "installing ${missing[*]} (apt-get) for the browser tests"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "warning: ${missing[*]} missing; the browser tests need them (apt-get install -y ${missing[*]})" >&2
    fi
  fi
fi
"$PY" -c "import torch, lossbook; print(f'torch {torch.__version__}, lossbook {lossbook.__version__}: installed')"
