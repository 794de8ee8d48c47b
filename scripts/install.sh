#!/usr/bin/env bash
# Install everything the book and the tests need into the current Python environment
# (the browser used by the browser tests: scripts/install_browser.sh, called by scripts/test.sh).
# Idempotent: a second run only checks. PyTorch is installed first, so that the range in
# requirements.txt is already met and pip does not fetch a multi-GB CUDA build on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" 2>/dev/null; then
  # 2.13.0 is the CPU build this project is developed and tested with.
  echo "installing torch 2.13.0 (a large download on a machine that has no copy of it)"
  "$PY" -m pip install --quiet "torch==2.13.0"
fi
echo "installing requirements.txt (Jupyter Book, the test tools, the peer libraries; minutes on a first run)"
"$PY" -m pip install --quiet -r requirements.txt
"$PY" -m pip install --quiet --no-deps -e .
# The notebooks name the kernel `python3`. ipykernel's wheel installs one into this environment;
# register one (in this environment only, never over a kernel of the user's) only if none is found.
if ! "$PY" -m jupyter kernelspec list 2>/dev/null | grep -qw python3; then
  "$PY" -m ipykernel install --sys-prefix --name python3 >/dev/null
fi

"$PY" -c "import torch, lossbook; print(f'torch {torch.__version__}, lossbook {lossbook.__version__}: installed')"
