#!/usr/bin/env bash
# Installs Debian's rabbitmq-server when it is missing. The project starts its own
# node on 127.0.0.1 (cli/stack.py); the package's system service is not used.
set -euo pipefail
if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "rabbitmq-server is missing and this is not a Debian-like system: install RabbitMQ," \
       "or point AGORA_AMQP_URL at a broker." >&2
  exit 1
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
