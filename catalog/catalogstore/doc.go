// Package catalogstore is the durable, versioned system of record of each
// tenant's price catalogue (service, plan, fee, element, rate-table and
// discount-table masters), customers, groups and contracts, and the
// in-memory replica every admin and rater process serves them from.
//
// ClickHouse holds every revision of every entity (catalog_entities,
// append-only; schemas/clickhouse/0006_catalog.sql). A write (Store) takes
// the tenant's Redis write lock, brings its Replica up to exactly the
// committed state, checks the caller's expected revision and every
// reference, and appends the new revisions with the tenant's next commit
// sequence numbers. Replicas follow the commit sequence through a small
// change feed (catalog_heads, catalog_log) every PollInterval, so a change
// reaches every process within about one poll. History and as-of reads go to
// ClickHouse; everything else is answered from memory.
//
// Customers' personal fields are sealed by a Sealer (package vault) before
// they are stored; replicas keep only the ciphertext and blind indexes.
package catalogstore
