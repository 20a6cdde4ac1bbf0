#!/usr/bin/env bash
# Prints the Python to build .venv with: 3.12 or newer where the machine has one
# (3.11's ast module can fail under threads: CPython gh-106905), else 3.11.
set -u
for candidate in ${AGORA_PYTHON:-} python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3 \
    python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3 python3; do
  [[ -n $candidate ]] || continue
  if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    command -v "$candidate" 2>/dev/null || echo "$candidate"
    exit 0
  fi
done
echo "no Python 3.11+ found; set AGORA_PYTHON" >&2
exit 1
