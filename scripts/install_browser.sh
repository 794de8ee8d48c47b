#!/usr/bin/env bash
# Install what only the browser tests need: Debian's Chromium and two fonts. Called by
# scripts/test.sh (not by scripts/book.sh: building and reading the book needs no browser).
# Idempotent; uses apt-get as root, or `sudo -n` when that works, and otherwise says what is missing.
set -euo pipefail
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
