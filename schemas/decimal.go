package schemas

import "github.com/shopspring/decimal"

// StoredDecimalPlaces is the scale of every Decimal(38, 9) column Kakin
// writes (quantities, unit prices, amounts).
const StoredDecimalPlaces = 9

// MaxStoredDecimal bounds the magnitude of a value Kakin stores in a
// Decimal(38, 9) column. The column holds |x| < 10^29 (29 integer digits);
// one digit is kept as headroom so that sums over a few lines stay inside it
// too. ClickHouse would silently truncate extra decimals and wrap an
// overflow, so the aggregator refuses such a value, and the rater parks a
// record whose line would carry one (ReasonOverflow) instead of emitting it.
var MaxStoredDecimal = decimal.New(1, 28)

// StoredDecimalOK reports whether d can be stored exactly: at most
// StoredDecimalPlaces decimal places and |d| < MaxStoredDecimal.
func StoredDecimalOK(d decimal.Decimal) bool {
	return d.Equal(d.Truncate(StoredDecimalPlaces)) && d.Abs().LessThan(MaxStoredDecimal)
}
