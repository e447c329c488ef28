// Package catalog defines the price catalogue and contract documents that
// admins edit and the rater reads: the masters (service, price plan, fee,
// calculation element, rate table, discount table), customers, groups and
// the basic, service/price and discount contracts.
//
// The same types are the JSON bodies of the admin API, the rows' documents in
// the versioned store and the entries of a catalogue file
// (`kakin catalog apply -f catalogue.yaml`). Validate methods report every
// problem with the field it concerns, so the API can answer 422 with a list.
//
// Two kinds of time appear here. Masters carry validity periods as instants
// (ValidFrom inclusive, ValidTo exclusive, RFC 3339): a usage record is priced
// with the versions valid at its own time. Contracts carry civil dates
// (start and end day, both inclusive) read in the basic contract's time zone,
// because pro-rating counts calendar days.
package catalog
