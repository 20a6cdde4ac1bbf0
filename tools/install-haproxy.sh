#!/usr/bin/env bash
# Installs Debian's haproxy when it is missing: the cluster topology (make cluster-up,
# cli/cluster.py) runs its own haproxy on 127.0.0.1 in front of two API processes and
# three RabbitMQ nodes; the package's system service is not used.
set -euo pipefail
if command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "haproxy is missing and this is not a Debian-like system: install HAProxy" \
       "to run the cluster topology." >&2
  exit 1
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -qq --no-install-recommends haproxy >/dev/null \
  || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }
# the package may start its own service; this project does not use it
if command -v systemctl >/dev/null && systemctl is-active --quiet haproxy 2>/dev/null; then
  $sudo systemctl stop haproxy || true
fi
