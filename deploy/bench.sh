#!/usr/bin/env bash
# make bench: starts a private Kakin stack (Redis, ClickHouse, embedded broker,
# all roles in one process) on free ports in a temporary directory, runs
# `kakin loadgen` against it for a fixed number of events, prints the report and
# tears everything down. Override with BENCH_EVENTS, BENCH_BATCH,
# BENCH_CONCURRENCY, BENCH_RATE, BENCH_DUP.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=./bin/kakin
[[ -x $bin ]] || { echo "bench: build first (make build)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d /tmp/kakin-bench.XXXXXX)
http=$(free_port); redis=$(free_port); ch=$(free_port); chhttp=$(free_port); kafka=$(free_port)
export KAKIN_HTTP_ADDR=127.0.0.1:$http KAKIN_REDIS_ADDR=127.0.0.1:$redis \
	KAKIN_CLICKHOUSE_ADDR=127.0.0.1:$ch KAKIN_KAFKA_BROKERS=127.0.0.1:$kafka \
	KAKIN_LOG_LEVEL=warn

$bin dev --data-dir="$dir" --clickhouse-http-port="$chhttp" >"$dir/dev.out" 2>"$dir/dev.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

for _ in $(seq 1 300); do
	if curl -fsS "http://127.0.0.1:$http/readyz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$pid" 2>/dev/null; then echo "bench: kakin dev exited:" >&2; tail -30 "$dir/dev.log" >&2; exit 1; fi
	sleep 0.1
done

echo "bench: $(nproc) cores, $(git describe --always --dirty 2>/dev/null || echo unknown)"
$bin loadgen --url "http://127.0.0.1:$http" \
	--events "${BENCH_EVENTS:-200000}" --batch "${BENCH_BATCH:-1000}" \
	--concurrency "${BENCH_CONCURRENCY:-4}" --rate "${BENCH_RATE:-0}" \
	--duplicate-share "${BENCH_DUP:-0.05}" --customers 1000 "$@"
