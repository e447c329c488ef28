// Package billing is the receivable (債権) domain, pure (no I/O, no clock): it
// turns a basic contract's priced charges of one billing period into a
// receivable with detail lines (債権明細) — fixed fees pro-rated, metered
// charges by service contract, fee and split, discounts, adjustments for
// closed periods and consumption tax (消費税) — and derives the
// deterministic ids, the content hash and the invoice numbers.
//
// Tax rule (the qualified-invoice rule, 適格請求書): the lines are grouped by
// (tax category, rate, inclusive); the tax of each group is computed once from
// the group's exact sum and rounded once to the currency with the basic
// contract's rounding mode. Exclusive groups add one tax line each; inclusive
// groups contain their tax, derived as base × rate / (1 + rate). Either way
// the group's tax is allocated to its lines (largest remainder, ties by line
// order) so that the lines' taxes sum to the group's. Rates are effective
// dated (TaxRates) and chosen by the last day a charge covers.
//
// Compose is the one code path for a draft, a preview and a final
// receivable: the billing run (package billing/run) calls it for every basic
// contract of a period.
package billing
