# Kakin — developer entry points. `make run` starts a whole local pipeline,
# `make test` runs every test against real Redis, ClickHouse and an embedded
# Kafka-protocol broker, `make bench` measures the pipeline.

GO       ?= go
BIN      := bin/kakin
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
DATA_DIR ?= .run
PREFIX   ?= /usr/local

.PHONY: all build install deps run test test-cluster test-clock test-short fuzz chaos bench bench-core bench-rater bench-import bench-dedupe bench-catalog bench-close chaos-close bench-reads vet fmt clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/kakin

# Installs bin/kakin as $(PREFIX)/bin/kakin (default /usr/local/bin, which
# needs root: sudo make install; or make install PREFIX=$HOME/.local) so that
# the README's `kakin …` commands work from any directory. DESTDIR is
# honoured for packaging.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/kakin

# Installs redis-server and clickhouse-server from Debian when missing.
deps:
	@bash deploy/install-deps.sh

# Starts Redis, ClickHouse and the embedded broker under $(DATA_DIR), migrates,
# loads the demo price list and serves every role. Ctrl-C stops it all; the
# data stays for the next run.
run: deps build
	./$(BIN) dev --data-dir=$(DATA_DIR)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# Unit, integration and end-to-end tests (the e2e package builds the binary and
# runs the roles as separate processes), then once more with the clock a year
# ahead for every package whose code or tests read internal/clock: no test may
# depend on the day it runs. Every integration package starts its own servers
# once (internal/testenv) and each test gets a fresh database of its own.
test: deps vet
	$(GO) test -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory test-clock

# The packages that read the business clock (internal/clock), directly or
# through a dependency, tested with it moved by CLOCK_OFFSET (default a year).
# e2e and chaos run kakin processes on a world clock of their own (they set
# KAKIN_CLOCK_OFFSET for every process they start, which overrides the
# outer one), so moving the clock changes only what their test process itself
# reads: nothing in chaos, and in e2e only the tests listed in CLOCK_E2E
# (TestAPIPlatform creates tenants and clients in-process, stamped by
# clock.Now). Re-running the rest of them would test the same thing twice.
# A new e2e test that reads the clock in its own process joins CLOCK_E2E.
CLOCK_OFFSET ?= 8760h
CLOCK_PINNED = github.com/kakin-dev/kakin/e2e github.com/kakin-dev/kakin/chaos
CLOCK_E2E    = ^TestAPIPlatform$$
CLOCK_PKGS = $(filter-out $(CLOCK_PINNED),$(shell $(GO) list -test -f '{{.ImportPath}} {{join .Deps " "}}' ./... | \
	awk '$$1 !~ /\.test$$/ && / github.com\/kakin-dev\/kakin\/internal\/clock( |$$)/ || $$1 ~ /\/internal\/clock$$/ {sub(/_test$$/, "", $$1); print $$1}' | sort -u))
test-clock:
	@echo "== the clock moved by $(CLOCK_OFFSET) (KAKIN_CLOCK_OFFSET) for the packages that read it"
	KAKIN_CLOCK_OFFSET=$(CLOCK_OFFSET) $(GO) test -count=1 -timeout 15m $(CLOCK_PKGS)
	KAKIN_CLOCK_OFFSET=$(CLOCK_OFFSET) $(GO) test -count=1 -timeout 15m -run '$(CLOCK_E2E)' ./e2e/

# The replicated, sharded ClickHouse test (issue 18): ZooKeeper and 2 shards ×
# 2 replicas of clickhouse-server, `kakin migrate --cluster`, the aggregator
# inserting through the Distributed tables while a replica is SIGKILLed and
# restarted. About a minute on a loaded 2-core box; skips, saying so, when
# zookeeper is not installed (deploy/install-deps.sh installs it).
test-cluster: deps
	KAKIN_TEST_CLUSTER=1 $(GO) test -count=1 -v -timeout 10m -run '^TestCluster' ./aggregator/

test-short:
	$(GO) test -count=1 -short ./...

# Native Go fuzzing of every decoder of outside input (request bodies, CSV
# and NDJSON files, catalogue files, cursors, tokens, headers, Kafka messages,
# Redis state): each Fuzz* target in turn (go test -fuzz takes one at a time)
# for FUZZTIME. The seed corpora (f.Add and testdata/fuzz/) also run in every
# plain `go test`, so `make test` replays them. -short keeps the integration
# packages from starting Redis/ClickHouse: no fuzz target needs them. A new
# failing input lands in the package's testdata/fuzz/FuzzX/: commit it with
# the fix. FUZZ narrows the targets by name (make fuzz FUZZ=Decode).
FUZZTIME         ?= 30s
FUZZMINIMIZETIME ?= 10s
FUZZ             ?= .
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/^func //' | grep -E '$(FUZZ)'); do \
			echo "== $$dir $$target ($(FUZZTIME))"; \
			$(GO) test -short -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$dir || exit 1; \
		done; \
	done

# The fault harness, long version (chaos/, docs/ARCHITECTURE.md "Fault
# harness"): two processes of every role, the broker, Redis and ClickHouse
# killed or stopped at random, at least 20 faults of every kind, then exact
# totals. 15-30 minutes. KAKIN_CHAOS_SEED=N repeats a run (a failing run
# prints its seed), KAKIN_CHAOS_FAULTS=N sets the faults per kind. The short
# version (8 faults, under a minute) runs in `make test`.
chaos: deps
	KAKIN_CHAOS=long $(GO) test -count=1 -v -timeout 3h -run '^TestChaos$$' ./chaos/

# Pipeline benchmark: the bare Kafka chain (shared/bench/barechain) and a private
# Kakin stack with `kakin loadgen`, interleaved (A B A B); prints both, their
# ratio, and appends a row to docs/BENCHMARKS.md (BENCH_RECORD=0: not).
bench: deps build
	@bash deploy/bench.sh

# CPU benchmarks of the pure stages (no I/O).
bench-core:
	$(GO) test -run '^$$' -bench . -benchmem ./ingest/ ./rater/ ./dedupe/ ./schemas/

# Pricing engine benchmarks (rater/pricing, no I/O): events/s per core with
# running state, allocations per event, state persistence, compiling 1M contracts.
bench-rater:
	$(GO) test -run '^$$' -bench . -benchmem ./rater/pricing/
# The 100 MiB import through a real ingest process: records/s and the
# process's peak RSS (KAKIN_E2E_IMPORT_MB=N for another size).
bench-import: deps
	$(GO) test -count=1 -v -run '^TestImportMemory$$' ./e2e/
# Dedupe claims in Redis: checks/s of the claim path and of the stage (without
# the broker), and Redis memory per remembered id at 10 million ids (INFO
# memory), against a private redis-server and a private Redis Cluster of two
# masters started by the test. A few minutes; override the id count with
# KAKIN_BENCH_DEDUPE_IDS. Figures go to docs/BENCHMARKS.md.
DEDUPE_IDS ?= 10000000
bench-dedupe: deps
	$(GO) test -run '^$$' -bench 'BenchmarkClaim$$|BenchmarkStage$$' -benchtime 300x ./dedupe/
	KAKIN_BENCH_DEDUPE_IDS=$${KAKIN_BENCH_DEDUPE_IDS:-$(DEDUPE_IDS)} $(GO) test -run '^$$' -bench 'BenchmarkClaim10M$$' -benchtime 1x -timeout 30m -v ./dedupe/
	KAKIN_BENCH_DEDUPE_REDIS=cluster $(GO) test -run '^$$' -bench 'BenchmarkClaim$$|BenchmarkStage$$' -benchtime 300x ./dedupe/
	KAKIN_BENCH_DEDUPE_REDIS=cluster KAKIN_BENCH_DEDUPE_IDS=$${KAKIN_BENCH_DEDUPE_IDS:-$(DEDUPE_IDS)} $(GO) test -run '^$$' -bench 'BenchmarkClaim10M$$' -benchtime 1x -timeout 30m -v ./dedupe/
# Catalogue at scale: 1,000,000 customers, 1,000,000 basic and 1,000,000 service
# contracts in one tenant (KAKIN_BENCH_CUSTOMERS to change); replica load
# time and memory, search/count/get/update latency through the HTTP handlers.
# Close of a period: 100,000 customers, 1,000,000 receivable detail lines
# (KAKIN_BENCH_CLOSE_CUSTOMERS to change): batch recomputation from
# usage_records, reconciliation, drafts, finalise with numbers; lines/s and
# peak RSS. Figures go to docs/BENCHMARKS.md.
bench-close: deps
	KAKIN_BENCH_CLOSE_CUSTOMERS=$${KAKIN_BENCH_CLOSE_CUSTOMERS:-100000} $(GO) test -run '^$$' -bench BenchmarkClose -benchtime 1x -timeout 30m -v ./billing/run/

# The SIGKILL of `kakin billing close` at 100,000 customers (make test runs
# it at 20,000); the second close waits out the killed one's lock lease.
chaos-close: deps
	KAKIN_TEST_KILL_CUSTOMERS=$${KAKIN_TEST_KILL_CUSTOMERS:-100000} KAKIN_TEST_KILL_WAIT_LEASE=1 $(GO) test -run '^TestCloseResumesAfterSIGKILL$$' -count=1 -timeout 30m -v ./billing/run/

# Reads finance relies on, at 1,000,000 lines: receivables (get one with its
# lines, searches and counts over 100,000 receivables; KAKIN_BENCH_RECEIVABLES
# to change) and one service contract's charges per month (1,000,000 rated
# lines; BENCH_LINES to change); p50/p99 per read. Figures go to
# docs/BENCHMARKS.md.
bench-reads: deps
	$(GO) test -count=1 -run '^$$' -bench ReceivableReads -benchtime 200x -timeout 30m -v ./billing/billingdb/
	$(GO) test -count=1 -run '^$$' -bench ContractCharges -benchtime 50x -timeout 30m -v ./usagedb/

bench-catalog: deps
	KAKIN_BENCH_CUSTOMERS=$${KAKIN_BENCH_CUSTOMERS:-1000000} $(GO) test -run '^$$' -bench BenchmarkCatalogAtScale -benchtime 200x -timeout 60m ./admin/catalogapi/

fmt:
	gofmt -w .

clean:
	rm -rf bin
