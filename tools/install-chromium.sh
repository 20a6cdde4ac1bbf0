#!/usr/bin/env bash
# Installs Debian's chromium when it is missing: the console's browser tests drive it
# with Playwright (its own browser download cannot be had here), headless, with the
# flags that keep it off the network (tests/console/conftest.py).
set -euo pipefail
if command -v chromium >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "chromium is missing and this is not a Debian-like system: install Chromium and" \
       "set AGORA_CHROMIUM to its path." >&2
  exit 1
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
