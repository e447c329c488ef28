// Package dedupe is the stage between usage.raw and usage.accepted. It claims
// each record's (tenant, id) in Redis within a window; the first record to
// claim an id passes on to usage.accepted, every later one goes to
// usage.duplicates with a reference to the claim it lost to. A claim names the
// record that made it (its partition and offset in usage.raw), so a record
// redelivered after a crash recognises its own claim and is not flagged as its
// own duplicate.
package dedupe
