#!/usr/bin/env bash
# make bench: Kakin against the bare Kafka chain (the floor, ../shared/bench/
# barechain or BARECHAIN_DIR), interleaved in the same run: A B A B… so that
# the ratio is taken on a machine in the same state (this box is shared and
# its speed drifts).
#
# It starts a private Kakin stack (Redis, ClickHouse, embedded broker, every
# role in one `kakin dev` process) on free ports in a temporary directory and
# an ingest-only front door (--dev-insecure, as the bare chain has no auth).
# Each round runs the bare chain's pipelined mode (N msgs produced while the
# chain runs; N ÷ first produce → last row) and then `kakin loadgen` for N
# events (accepted ÷ first post → last total queryable, totals verified
# exactly), and prints both and their ratio. The CPU each side used is read
# from /proc for the process trees (Kakin: the dev process, its ClickHouse,
# Redis and the front door; loadgen excluded; the bare chain: its process and
# its ClickHouse), per event.
#
# At the end it prints the medians and appends a row (date, commit, figures)
# to docs/BENCHMARKS.md (BENCH_RECORD=0: do not). BENCH_SECURE=1 adds a run
# through the real front door (access token, rate limits).
# Override with BENCH_EVENTS, BENCH_ROUNDS, BENCH_BATCH, BENCH_CONCURRENCY,
# BENCH_RATE, BENCH_DUP, BENCH_NOTE (the row's note), BARECHAIN_DIR.
# BENCH_PPROF=127.0.0.1:PORT serves net/http/pprof from the kakin dev process
# (go tool pprof -seconds 20 http://…/debug/pprof/profile during a round).
# BENCH_CATALOG=1 adds, in every round, a run against a catalogue-priced
# tenant (loadgen's tiered catalogue: graduated tiers with running state in
# Redis, applied for the round's customers with kakin catalog apply) and a
# second row for it, with its ratio to the flat run of the same round. GOGC and
# GOMEMLIMIT reach the Kakin processes only (the bare chain runs with Go's
# defaults), to measure GC settings.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bin=./bin/kakin
[[ -x $bin ]] || { echo "bench: build first (make build)" >&2; exit 1; }
events=${BENCH_EVENTS:-200000}
rounds=${BENCH_ROUNDS:-2}
bare_dir=${BARECHAIN_DIR:-}
if [[ -z $bare_dir ]]; then
	for d in ../shared/bench/barechain ../../shared/bench/barechain /work/shared/bench/barechain; do
		[[ -f $d/main.go ]] && { bare_dir=$d; break; }
	done
fi
[[ -n $bare_dir && -f $bare_dir/main.go ]] || { echo "bench: bare chain not found (set BARECHAIN_DIR)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d /tmp/kakin-bench.XXXXXX)
bare_bin=$dir/barechain
(cd "$bare_dir" && go build -o "$bare_bin" .)

http=$(free_port); http2=$(free_port); http3=$(free_port); redis=$(free_port); ch=$(free_port); chhttp=$(free_port); kafka=$(free_port)
export KAKIN_HTTP_ADDR=127.0.0.1:$http KAKIN_REDIS_ADDR=127.0.0.1:$redis \
	KAKIN_CLICKHOUSE_ADDR=127.0.0.1:$ch KAKIN_KAFKA_BROKERS=127.0.0.1:$kafka \
	KAKIN_LOG_LEVEL=warn

$bin dev --data-dir="$dir" --clickhouse-http-port="$chhttp" ${BENCH_PPROF:+--pprof="$BENCH_PPROF"} >"$dir/dev.out" 2>"$dir/dev.log" &
pid=$!
pid2=
pid3=
pid4=
cleanup() {
	[[ -n $pid4 ]] && { kill "$pid4" 2>/dev/null || true; wait "$pid4" 2>/dev/null || true; }
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

export KAKIN_TOKEN_KEYS_FILE="$dir/token-keys"
$bin serve --roles=ingest --dev-insecure --http-addr=127.0.0.1:$http2 2>"$dir/insecure.log" &
pid2=$!
if [[ ${BENCH_SECURE:-0} == 1 ]]; then
	$bin serve --roles=ingest --http-addr=127.0.0.1:$http3 2>"$dir/secure.log" &
	pid3=$!
fi
for port in $http2 ${pid3:+$http3}; do
	for _ in $(seq 1 100); do
		curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
		sleep 0.1
	done
done

# cpu_of PID…: CPU seconds (user + system) used so far by the processes and
# all their descendants that are alive now.
cpu_of() {
	python3 - "$@" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
kids, cpu = {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        s = open(f"/proc/{p}/stat").read()
    except OSError:
        continue
    f = s[s.rindex(")") + 2:].split()
    kids.setdefault(int(f[1]), []).append(int(p))
    cpu[int(p)] = (int(f[11]) + int(f[12])) / hz
todo, seen, total = [int(a) for a in sys.argv[1:]], set(), 0.0
while todo:
    p = todo.pop()
    if p in seen:
        continue
    seen.add(p)
    total += cpu.get(p, 0)
    todo += kids.get(p, [])
print(f"{total:.2f}")
PY
}

loadgen() {
	$bin loadgen --clickhouse-log-queries --events "$events" --batch "${BENCH_BATCH:-1000}" \
		--concurrency "${BENCH_CONCURRENCY:-4}" --rate "${BENCH_RATE:-0}" \
		--duplicate-share "${BENCH_DUP:-0.05}" --customers 1000 "$@"
}

# The dev stack's clickhouse-server: its CPU, and the CPU of loadgen's own
# queries (logged in system.query_log, --clickhouse-log-queries), give the
# share of ClickHouse's work the probe and verify queries take.
chpid=$(python3 - "$pid" <<'PY'
import os, sys
kids = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            s = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        kids.setdefault(int(s[s.rindex(")") + 2:].split()[1]), []).append(int(p))
todo = [int(sys.argv[1])]
while todo:
    p = todo.pop()
    try:
        if open(f"/proc/{p}/comm").read().strip().startswith("clickhouse"):
            print(p)
            break
    except OSError:
        pass
    todo += kids.get(p, [])
PY
)
chq() { curl -fsS "http://127.0.0.1:$chhttp/" --data-binary "$1"; }

commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
tiered_tenant=bench-tiered
if [[ ${BENCH_CATALOG:-0} == 1 ]]; then
	$bin tenants create "$tiered_tenant" >"$dir/tenant.out" 2>&1 || grep -qi exist "$dir/tenant.out" || { echo "bench: tenants create failed:" >&2; cat "$dir/tenant.out" >&2; exit 1; }
	# An admin front door (development mode) to create the customers the
	# tiered catalogue's contracts name (one at a time: a change holds the
	# tenant's catalogue lock, concurrent ones are answered 503); its CPU is
	# not counted.
	http4=$(free_port)
	$bin serve --roles=admin --dev-insecure --http-addr=127.0.0.1:$http4 --master-key-file="$dir/master-key" 2>"$dir/admin.log" &
	pid4=$!
	for _ in $(seq 1 300); do
		curl -fsS "http://127.0.0.1:$http4/readyz" >/dev/null 2>&1 && break
		kill -0 "$pid4" 2>/dev/null || { echo "bench: admin process exited:" >&2; tail -20 "$dir/admin.log" >&2; exit 1; }
		sleep 0.1
	done
fi
: >"$dir/tiered-results"
echo "bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $commit, $events events, $rounds rounds (bare chain and Kakin interleaved)"
results=$dir/results
: >"$results"
for r in $(seq 1 "$rounds"); do
	# A: the bare chain, pipelined.
	env -u GOGC -u GOMEMLIMIT "$bare_bin" -modes pipelined -n "$events" >"$dir/bare.out" 2>"$dir/bare.log" || { echo "bench: bare chain failed:" >&2; tail -20 "$dir/bare.log" >&2; exit 1; }
	bare_line=$(grep 'pipelined: produced' "$dir/bare.log" | tail -1)
	bare_rate=$(sed -E 's/.*= ([0-9]+) msgs\/s end to end.*/\1/' <<<"$bare_line")
	bare_us=$(sed -E 's/.* = ([0-9.]+) µs\/msg.*/\1/' <<<"$bare_line")
	grep -q 'verify .*: exact' "$dir/bare.log" || { echo "bench: bare chain totals not exact" >&2; exit 1; }

	# B: Kakin, first post → last total queryable.
	c0=$(cpu_of "$pid" "$pid2")
	ch0=$(cpu_of "${chpid:-0}")
	t0=$(date +%s)
	loadgen --url "http://127.0.0.1:$http2" --json >"$dir/kakin.json" 2>"$dir/loadgen.log" || { echo "bench: loadgen failed:" >&2; cat "$dir/kakin.json" >&2; tail -20 "$dir/loadgen.log" >&2; exit 1; }
	c1=$(cpu_of "$pid" "$pid2")
	ch1=$(cpu_of "${chpid:-0}")
	q_share=nan
	if [[ -n $chpid ]] && chq "SYSTEM FLUSH LOGS" >/dev/null 2>&1; then
		read -r q_n q_cpu < <(chq "SELECT count(), sum(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')] + ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')]) / 1e6 FROM system.query_log WHERE type IN (2, 4) AND event_time >= toDateTime($t0) FORMAT TSV" 2>/dev/null || echo "0 0")
		q_share=$(python3 -c "d = $ch1 - $ch0; print(f'{100 * $q_cpu / d:.1f}' if d > 0 else 'nan')")
		chq "SELECT count() AS n, round(sum(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')] + ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')]) / 1e6, 2) AS cpu_s, replaceRegexpAll(substring(query, 1, 60), '[[:space:]]+', ' ') AS q FROM system.query_log WHERE type IN (2, 4) AND event_time >= toDateTime($t0) GROUP BY q ORDER BY cpu_s DESC LIMIT 4 FORMAT TSV" 2>/dev/null | sed "s/^/round $r: loadgen query kind: /" || true
		printf "round %d: loadgen's probe/verify queries: %s, %s CPU-s of the ClickHouse server's %s s = %s %%\n" "$r" "$q_n" "$q_cpu" "$(python3 -c "print(f'{$ch1 - $ch0:.2f}')")" "$q_share"
	fi
	read -r k_rate k_acc k_send k_drain k_p50 k_p99 k_exact < <(python3 - "$dir/kakin.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); v = r["verification"]; l = r["ingest_to_queryable"]
total = r["send_seconds"] + (v["drain_seconds"] or float("nan"))
print(f'{r["accepted"] / total:.0f} {r["accepted"]} {r["send_seconds"]:.2f} {v["drain_seconds"] or float("nan"):.2f} {l["p50_ms"]:.0f} {l["p99_ms"]:.0f} {"exact" if v["exact"] else "MISMATCH"}')
PY
)
	k_us=$(python3 -c "print(f'{($c1 - $c0) * 1e6 / $k_acc:.1f}')")
	ratio=$(python3 -c "print(f'{$k_rate / $bare_rate:.3f}')")
	printf 'round %d: bare chain %s msgs/s (%s µs/msg) | Kakin %s events/s (%s µs/event; send %ss + drain %ss; ingest→queryable p50 %s / p99 %s ms; totals %s) | ratio %s\n' \
		"$r" "$bare_rate" "$bare_us" "$k_rate" "$k_us" "$k_send" "$k_drain" "$k_p50" "$k_p99" "$k_exact" "$ratio"
	echo "$bare_rate $bare_us $k_rate $k_us $ratio $k_p50 $k_p99 $q_share" >>"$results"
	[[ $k_exact == exact ]] || { echo "bench: Kakin totals did not match" >&2; exit 1; }

	if [[ ${BENCH_CATALOG:-0} == 1 ]]; then
		# C: the same load against the catalogue-priced tenant.
		run_id=lgt$(date +%s)r$r
		$bin loadgen --run-id "$run_id" --customers 1000 --print-catalog >"$dir/tiered.yaml"
		$bin loadgen --run-id "$run_id" --customers 1000 --print-customers |
			xargs -P 1 -I{} curl -fsS --retry 10 -o /dev/null -H "Kakin-Tenant: $tiered_tenant" -H 'Content-Type: application/json' \
				--data '{"id":"{}"}' "http://127.0.0.1:$http4/v1/customers" || { echo "bench: creating the customers failed" >&2; exit 1; }
		$bin catalog apply --tenant "$tiered_tenant" -f "$dir/tiered.yaml" --yes >"$dir/apply.out" 2>&1 || { echo "bench: catalog apply failed:" >&2; tail -20 "$dir/apply.out" >&2; exit 1; }
		sleep 3 # the rater's catalogue replica looks every second, then recompiles
		c0=$(cpu_of "$pid" "$pid2")
		loadgen --url "http://127.0.0.1:$http2" --tenant "$tiered_tenant" --run-id "$run_id" --catalog-tiered --json >"$dir/tiered.json" 2>"$dir/loadgen-tiered.log" || { echo "bench: tiered loadgen failed:" >&2; cat "$dir/tiered.json" >&2; tail -20 "$dir/loadgen-tiered.log" >&2; exit 1; }
		c1=$(cpu_of "$pid" "$pid2")
		read -r t_rate t_acc t_send t_drain t_p50 t_p99 t_exact < <(python3 - "$dir/tiered.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); v = r["verification"]; l = r["ingest_to_queryable"]
total = r["send_seconds"] + (v["drain_seconds"] or float("nan"))
print(f'{r["accepted"] / total:.0f} {r["accepted"]} {r["send_seconds"]:.2f} {v["drain_seconds"] or float("nan"):.2f} {l["p50_ms"]:.0f} {l["p99_ms"]:.0f} {"exact" if v["exact"] else "MISMATCH"}')
PY
)
		t_us=$(python3 -c "print(f'{($c1 - $c0) * 1e6 / $t_acc:.1f}')")
		t_ratio=$(python3 -c "print(f'{$t_rate / $bare_rate:.3f}')")
		printf 'round %d: catalogue-priced tenant (graduated tiers, running state): %s events/s (%s µs/event; send %ss + drain %ss; ingest→queryable p50 %s / p99 %s ms; totals %s) | ratio to the bare chain %s, to the flat run %s\n' \
			"$r" "$t_rate" "$t_us" "$t_send" "$t_drain" "$t_p50" "$t_p99" "$t_exact" "$t_ratio" "$(python3 -c "print(f'{$t_rate / $k_rate:.2f}')")"
		echo "$bare_rate $bare_us $t_rate $t_us $t_ratio $t_p50 $t_p99" >>"$dir/tiered-results"
		[[ $t_exact == exact ]] || { echo "bench: catalogue-priced totals did not match" >&2; exit 1; }
	fi
done

read -r m_bare m_bare_us m_k m_k_us m_ratio m_p50 m_p99 all_ratios all_shares < <(python3 - "$results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
print(f"{med(0):.0f} {med(1):.1f} {med(2):.0f} {med(3):.1f} {med(4):.3f} {med(5):.0f} {med(6):.0f} " + ",".join(f"{r[4]:.2f}" for r in rows)
      + " " + ",".join(f"{r[7]:.1f}" for r in rows))
PY
)
echo
echo "bench: median of $rounds rounds: bare chain $m_bare msgs/s ($m_bare_us µs/msg), Kakin $m_k events/s ($m_k_us µs/event), ratio $m_ratio (per round: $all_ratios); loadgen's queries' share of ClickHouse CPU per round: $all_shares %"

# Batch and insert sizes over all rounds, from the dev process's metrics.
cat >"$dir/sizes.py" <<'PY'
import re, sys
m = {}
for line in open(sys.argv[1]):
    g = re.match(r'(\w+)\{([^}]*)\} (\S+)$', line.strip())
    if g:
        m[(g[1], g[2])] = float(g[3])
def val(name, **labels):
    return sum(v for (n, l), v in m.items() if n == name and all(f'{k}="{x}"' in l for k, x in labels.items()))
out = []
for st in ("dedupe", "rater", "aggregator"):
    c = val("kakin_stage_batch_records_count", stage=st)
    if c:
        out.append("%s %.0f" % (st, val("kakin_stage_batch_records_sum", stage=st) / c))
rows = []
for table, outcome in (("rated_usage", "rated"), ("usage_records", "record"), ("usage_duplicates", "duplicate")):
    n = val("kakin_clickhouse_insert_seconds_count", table=table)
    if n:
        rows.append("%s %.0f" % (table, val("kakin_stage_records_total", stage="aggregator", outcome=outcome) / n))
print("bench: mean records per consumer batch: " + ", ".join(out) + "; mean rows per insert: " + ", ".join(rows))
PY
curl -fsS "http://127.0.0.1:$http/metrics" >"$dir/metrics.txt" 2>/dev/null && python3 "$dir/sizes.py" "$dir/metrics.txt" || true

if [[ ${BENCH_SECURE:-0} == 1 ]]; then
	id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$dir/loadgen-client.json")
	secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$dir/loadgen-client.json")
	echo
	echo "== ingest with access token and rate limits =="
	loadgen --url "http://127.0.0.1:$http3" --client-id "$id" --client-secret "$secret"
fi

if [[ -s $dir/tiered-results ]]; then
	read -r tm_bare tm_bare_us tm_k tm_k_us tm_ratio tm_p50 tm_p99 t_all < <(python3 - "$dir/tiered-results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
print(f"{med(0):.0f} {med(1):.1f} {med(2):.0f} {med(3):.1f} {med(4):.3f} {med(5):.0f} {med(6):.0f} " + ",".join(f"{r[4]:.2f}" for r in rows))
PY
)
	echo "bench: catalogue-priced tenant, median of $rounds rounds: $tm_k events/s ($tm_k_us µs/event), ratio $tm_ratio (per round: $t_all)"
fi

if [[ ${BENCH_RECORD:-1} == 1 ]]; then
	printf '| %s | %s | %s | %s | %s / %s | %s | %s | %s / %s ms | %s |\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$commit" "$events × $rounds" \
		"$m_bare" "$m_bare_us" "$m_k_us" "$m_k" "$m_ratio ($all_ratios)" "$m_p50" "$m_p99" "${BENCH_NOTE:-}; loadgen queries $all_shares % of ClickHouse CPU" >>"$root/docs/BENCHMARKS.md"
	if [[ -s $dir/tiered-results ]]; then
		printf '| %s | %s | %s | %s | %s / %s | %s | %s | %s / %s ms | %s |\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$commit" "$events × $rounds" \
			"$tm_bare" "$tm_bare_us" "$tm_k_us" "$tm_k" "$tm_ratio ($t_all)" "$tm_p50" "$tm_p99" "catalogue-priced tenant (graduated tiers, running state), same rounds; ${BENCH_NOTE:-}" >>"$root/docs/BENCHMARKS.md"
	fi
	echo "bench: row appended to docs/BENCHMARKS.md"
fi
