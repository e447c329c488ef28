// Package dedupe is the stage between usage.raw and usage.accepted. It claims
// each record's (tenant, id) in Redis; the first record to claim an id passes
// on to usage.accepted, every later one goes to usage.duplicates with a
// reference to the claim it lost to. A claim names the record that made it
// (its partition and offset in usage.raw), so a record redelivered after a
// crash recognises its own claim and is not flagged as its own duplicate.
//
// A record is claimed by the headers ingest sets on it (tenant, event id,
// payload hash); its event is decoded only when it is a duplicate. Claims are
// packed 16-byte values in small per-tenant bucket hashes that Redis keeps in
// its compact listpack encoding (claims.go), in one Redis or spread over the
// masters of a Redis Cluster by hash tag; a batch is one pipelined round trip
// of Lua script calls. A claim counts for its tenant's
// window plus the ingest future skew; the Sweeper deletes claims past that
// (sweep.go). See docs/ARCHITECTURE.md, "Dedupe: claims in Redis".
package dedupe
