#!/usr/bin/env bash
# Installs the servers Kakin's dev stack and integration tests run:
# redis-server and clickhouse-server (Debian packages), clickhouse-client for
# a SQL prompt on the data (`make run` prints how to open one;
# docs/FINANCE.md), and promtool (Debian's prometheus package) for the alert
# rules' unit tests (deploy/prometheus), and zookeeper for the replicated
# ClickHouse cluster test (make test-cluster). Only missing ones are installed;
# `apt-get update` runs only when something is missing.
set -euo pipefail

have() {
	command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]] || [[ -x "/usr/bin/$1" ]]
}

missing=()
have redis-server || missing+=(redis-server)
have clickhouse-server || missing+=(clickhouse-server)
have clickhouse-client || missing+=(clickhouse-client)
have promtool || missing+=(prometheus)
[[ -f /usr/share/java/zookeeper.jar ]] || missing+=(zookeeper)

if ((${#missing[@]} == 0)); then
	echo "install-deps: redis-server, clickhouse-server, clickhouse-client, promtool and zookeeper already installed; nothing to do"
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: missing: ${missing[*]}; running apt-get update"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
echo "install-deps: installing: ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

if [[ ! -f /usr/share/java/zookeeper.jar ]]; then
	echo "install-deps: zookeeper still missing after apt-get install" >&2
	exit 1
fi
for b in redis-server clickhouse-server clickhouse-client promtool; do
	if ! have "$b"; then
		echo "install-deps: $b still missing after apt-get install" >&2
		exit 1
	fi
done
echo "install-deps: installed ${missing[*]}"
