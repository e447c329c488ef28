// Package rater prices first-seen usage records. It reads usage.accepted,
// looks up the tenant's price for the record's calculation element, computes
// the amount in exact decimals rounded to the currency's minor unit, and
// writes a rated line with a deterministic id to usage.rated. Records it cannot
// price go to usage.unrated with the reason; none is dropped.
package rater
