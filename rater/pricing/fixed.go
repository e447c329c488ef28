package pricing

import (
	"math"
	"math/big"
	"math/bits"

	"github.com/kakin-dev/kakin/money"
	"github.com/shopspring/decimal"
)

// The exact fixed-point fast path. Quantities and prices are integers scaled
// by 10^9 (ingest and the catalogue allow at most 9 decimal places), amounts
// before rounding are integers scaled by 10^18 (a quantity times a price).
// Products are 128-bit (math/bits); whenever a value does not fit, the caller
// falls back to decimal.Decimal, so the fast path is an optimisation that
// never changes a result (TestFastPathEqualsDecimal proves it).
const (
	qtyScale    = 9
	amountScale = 18
	qtyOne      = uint64(1_000_000_000) // 1 unit at the quantity scale
)

var pow10 = [20]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

func (a u128) isZero() bool { return a.hi == 0 && a.lo == 0 }

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// add returns a+b and false on overflow.
func (a u128) add(b u128) (u128, bool) {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, c2 := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}, c2 == 0
}

// sub returns a-b; the caller guarantees a >= b.
func (a u128) sub(b u128) u128 {
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, br)
	return u128{hi, lo}
}

func mul64(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

// mul64 returns a*b and false on overflow.
func (a u128) mul64(b uint64) (u128, bool) {
	h1, l1 := bits.Mul64(a.lo, b)
	h2, l2 := bits.Mul64(a.hi, b)
	if h2 != 0 {
		return u128{}, false
	}
	hi, c := bits.Add64(h1, l2, 0)
	return u128{hi, l1}, c == 0
}

// divmod64 returns a/d and a%d.
func (a u128) divmod64(d uint64) (u128, uint64) {
	qhi, r := a.hi/d, a.hi%d
	qlo, r := bits.Div64(r, a.lo, d)
	return u128{qhi, qlo}, r
}

func (a u128) big() *big.Int {
	b := new(big.Int).SetUint64(a.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(a.lo))
}

// decimalOf returns a scaled by 10^-scale as a decimal.
func decimalOf(a u128, scale int32) decimal.Decimal {
	if a.hi == 0 && a.lo <= math.MaxInt64 {
		return decimal.New(int64(a.lo), -scale)
	}
	return decimal.NewFromBigInt(a.big(), -scale)
}

var maxU128 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// u128Of returns d scaled by 10^scale as an integer; false when d is
// negative, has more decimals than scale, or does not fit 128 bits.
func u128Of(d decimal.Decimal, scale int32) (u128, bool) {
	if d.Sign() < 0 {
		return u128{}, false
	}
	// Fast: coefficient fits int64 and the exponent is close to -scale.
	if d.NumDigits() <= 18 {
		c := uint64(d.CoefficientInt64())
		shift := int(d.Exponent()) + int(scale)
		switch {
		case shift >= 0 && shift < len(pow10):
			hi, lo := bits.Mul64(c, pow10[shift])
			return u128{hi, lo}, true
		case shift < 0 && -shift < len(pow10):
			if c%pow10[-shift] != 0 {
				return u128{}, false
			}
			return u128{0, c / pow10[-shift]}, true
		}
	}
	s := d.Shift(scale)
	if !s.IsInteger() {
		return u128{}, false
	}
	b := s.BigInt()
	if b.Cmp(maxU128) > 0 {
		return u128{}, false
	}
	words := b.Bits()
	var out u128
	// big.Word is 64 bits on the platforms Kakin builds for.
	if len(words) > 0 {
		out.lo = uint64(words[0])
	}
	if len(words) > 1 {
		out.hi = uint64(words[1])
	}
	return out, true
}

// fixedPrice returns a non-negative catalogue number scaled by 10^9 when it
// fits an int64 (so that products stay inside 128 bits).
func fixedPrice(d decimal.Decimal) (uint64, bool) {
	v, ok := u128Of(d, qtyScale)
	if !ok || v.hi != 0 || v.lo > math.MaxInt64 {
		return 0, false
	}
	return v.lo, true
}

// roundMinor rounds a non-negative amount at scale 10^18 to the currency's
// minor unit with mode and returns it in minor units; false if it does not
// fit an int64. The rules are those of money.Round on non-negative values:
// half_up rounds halves away from zero, down truncates, up rounds away from
// zero.
func roundMinor(a u128, places int32, mode money.Mode) (int64, bool) {
	div := pow10[amountScale-places]
	q, r := a.divmod64(div)
	if q.hi != 0 || q.lo > math.MaxInt64-1 {
		return 0, false
	}
	switch mode {
	case money.Down:
	case money.Up:
		if r != 0 {
			q.lo++
		}
	default:
		if r >= div-r { // r >= div/2 without overflow or truncation
			q.lo++
		}
	}
	return int64(q.lo), true
}

// roundDelta rounds after-before (scale 10^18, either sign) to minor units;
// rounding is symmetric around zero, as money.Round is.
func roundDelta(after, before u128, places int32, mode money.Mode) (int64, bool) {
	if after.cmp(before) >= 0 {
		return roundMinor(after.sub(before), places, mode)
	}
	m, ok := roundMinor(before.sub(after), places, mode)
	return -m, ok
}

// minorOf converts an amount already rounded to places into minor units.
func minorOf(d decimal.Decimal, places int32) (int64, bool) {
	s := d.Shift(places)
	if !s.IsInteger() {
		return 0, false
	}
	b := s.BigInt()
	if !b.IsInt64() {
		return 0, false
	}
	return b.Int64(), true
}

// roundQuantityDec rounds a non-negative quantity to a multiple of inc.
func roundQuantityDec(q, inc decimal.Decimal, mode money.Mode) decimal.Decimal {
	n, r := q.QuoRem(inc, 0)
	switch mode {
	case money.Down:
	case money.Up:
		if r.Sign() > 0 {
			n = n.Add(decimal.NewFromInt(1))
		}
	default:
		if r.Add(r).Cmp(inc) >= 0 {
			n = n.Add(decimal.NewFromInt(1))
		}
	}
	return n.Mul(inc)
}

// roundQuantityFast is roundQuantityDec on the fixed-point scale.
func roundQuantityFast(q u128, inc uint64, mode money.Mode) (u128, bool) {
	n, r := q.divmod64(inc)
	up := false
	switch mode {
	case money.Down:
	case money.Up:
		up = r != 0
	default:
		up = r >= inc-r
	}
	if up {
		var ok bool
		if n, ok = n.add(u128{0, 1}); !ok {
			return u128{}, false
		}
	}
	return n.mul64(inc)
}
