#!/usr/bin/env bash
# make bench: starts a private Kakin stack (Redis, ClickHouse, embedded broker,
# all roles in one process) on free ports in a temporary directory, runs
# `kakin loadgen` against it for a fixed number of events, prints the report and
# tears everything down. It runs twice over the same stack: once through an
# ingest process in --dev-insecure mode (no tokens, no rate limits), once
# through the real front door (access token, rate limits), and prints both.
# Override with BENCH_EVENTS, BENCH_BATCH, BENCH_CONCURRENCY, BENCH_RATE,
# BENCH_DUP.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=./bin/kakin
[[ -x $bin ]] || { echo "bench: build first (make build)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d /tmp/kakin-bench.XXXXXX)
http=$(free_port); http2=$(free_port); http3=$(free_port); redis=$(free_port); ch=$(free_port); chhttp=$(free_port); kafka=$(free_port)
export KAKIN_HTTP_ADDR=127.0.0.1:$http KAKIN_REDIS_ADDR=127.0.0.1:$redis \
	KAKIN_CLICKHOUSE_ADDR=127.0.0.1:$ch KAKIN_KAFKA_BROKERS=127.0.0.1:$kafka \
	KAKIN_LOG_LEVEL=warn

$bin dev --data-dir="$dir" --clickhouse-http-port="$chhttp" >"$dir/dev.out" 2>"$dir/dev.log" &
pid=$!
pid2=
pid3=
cleanup() {
	[[ -n $pid2 ]] && { kill "$pid2" 2>/dev/null || true; wait "$pid2" 2>/dev/null || true; }
	[[ -n $pid3 ]] && { kill "$pid3" 2>/dev/null || true; wait "$pid3" 2>/dev/null || true; }
	kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
	if curl -fsS "http://127.0.0.1:$http/readyz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$pid" 2>/dev/null; then echo "bench: kakin dev exited:" >&2; tail -30 "$dir/dev.log" >&2; exit 1; fi
	sleep 0.1
done

# Two ingest-only front doors on the same stack, alike but for one thing:
# one checks access tokens and rate limits, the other runs --dev-insecure.
export KAKIN_TOKEN_KEYS_FILE="$dir/token-keys"
$bin serve --roles=ingest --dev-insecure --http-addr=127.0.0.1:$http2 2>"$dir/insecure.log" &
pid2=$!
$bin serve --roles=ingest --http-addr=127.0.0.1:$http3 2>"$dir/secure.log" &
pid3=$!
for port in $http2 $http3; do
	for _ in $(seq 1 100); do
		curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
done

id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$dir/loadgen-client.json")
secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$dir/loadgen-client.json")

run() {
	$bin loadgen --events "${BENCH_EVENTS:-200000}" --batch "${BENCH_BATCH:-1000}" \
		--concurrency "${BENCH_CONCURRENCY:-4}" --rate "${BENCH_RATE:-0}" \
		--duplicate-share "${BENCH_DUP:-0.05}" --customers 1000 "$@"
}

echo "bench: $(nproc) cores, $(git describe --always --dirty 2>/dev/null || echo unknown)"
echo
echo "== 1. ingest without auth and rate limits (--dev-insecure) =="
run --url "http://127.0.0.1:$http2"
echo
echo "== 2. ingest with access token and rate limits =="
run --url "http://127.0.0.1:$http3" --client-id "$id" --client-secret "$secret"
