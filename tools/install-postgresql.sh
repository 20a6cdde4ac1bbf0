#!/usr/bin/env bash
# Installs Debian's postgresql when it is missing: FerretDB v1 (run with
# --telemetry=disable) keeps its data there. The project runs its own server (initdb,
# then postgres on 127.0.0.1 as the postgres user; cli/stack.py); the package's system
# cluster is not used.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "postgresql is missing and this is not a Debian-like system: install PostgreSQL," \
       "or point AGORA_MONGODB_URI at a MongoDB." >&2
  exit 1
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
