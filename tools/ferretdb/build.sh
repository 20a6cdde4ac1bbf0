#!/usr/bin/env bash
# Builds FerretDB v1.24.2 (the MongoDB wire-compatible stand-in) into .agora/bin.
# cli/stack.py runs it on 127.0.0.1 with --telemetry=disable: it never calls out.
# The version is pinned by go.mod/go.sum beside this script. Go 1.26 stamps a tool
# build with FerretDB as the main module, whose version check then wants the
# version.txt that only FerretDB's own release build generates: we vendor the
# module and write that file, which is what its build does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-"$here/../../.agora/bin/ferretdb"}")
if [[ -x $out ]] && "$out" --version 2>/dev/null | grep "v1.24.2" >/dev/null; then
  exit 0
fi
cd "$here"
if ! go version >/dev/null 2>&1; then
  echo "FerretDB needs Go to build; install Go (the machine's Go 1.24 or newer)." >&2
  exit 1
fi
build() {
  go mod vendor
  echo v1.24.2 > vendor/github.com/FerretDB/FerretDB/build/version/version.txt
  mkdir -p "$(dirname "$out")"
  go build -mod=vendor -trimpath -o "$out" github.com/FerretDB/FerretDB/cmd/ferretdb
}
if ! build; then
  echo "FerretDB build failed with $(go version); retrying with GOTOOLCHAIN=go1.24.3" >&2
  GOTOOLCHAIN=go1.24.3 build
fi
rm -rf vendor
"$out" --version | sed -n 1p  # sed reads it all: no SIGPIPE under pipefail
