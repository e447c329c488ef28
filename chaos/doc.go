// Package chaos is Kakin's fault harness: it runs the pipeline as separate
// processes — every role as its own `kakin serve`, the broker as `kakin
// broker`, Redis and ClickHouse as devstack servers — sends two tenants'
// usage through a client that retries like a real metering system, lets a
// seeded nemesis kill (SIGKILL) or stop (SIGTERM) random processes at random
// times, and at the end checks what ClickHouse holds against what the client
// was acknowledged: every record stored once, exact totals per
// customer-period (a per-unit price-list tenant and a graduated-tier
// catalogue tenant), exact duplicate and unrated counts, every consumer group
// drained.
//
// TestChaos (chaos_test.go) runs a short version in `make test` and the long
// one under `make chaos` (KAKIN_CHAOS=long). A failing run prints its seed;
// KAKIN_CHAOS_SEED=N runs the same workload and the same fault schedule
// again (the interleaving with the pipeline's own timing is not replayed).
package chaos
