// Package money rounds exact decimal amounts to a currency's minor unit with an
// explicit rounding mode. Nothing in Kakin's money path uses floating point.
package money

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// Mode is a rounding rule for amounts.
type Mode string

// The rounding modes a contract can choose.
const (
	HalfUp Mode = "half_up" // 四捨五入: halves away from zero.
	Down   Mode = "down"    // 切り捨て: toward zero.
	Up     Mode = "up"      // 切り上げ: away from zero.
)

// ParseMode validates a rounding mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case HalfUp, Down, Up:
		return m, nil
	}
	return "", fmt.Errorf("unknown rounding mode %q (want half_up, down or up)", s)
}

// Round rounds d to places decimal places with mode m.
func Round(d decimal.Decimal, places int32, m Mode) decimal.Decimal {
	switch m {
	case Down:
		return d.RoundDown(places)
	case Up:
		return d.RoundUp(places)
	default:
		return d.Round(places)
	}
}

// minorUnits holds ISO 4217 minor units for the currencies Kakin knows.
var minorUnits = map[string]int32{
	"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0,
	"USD": 2, "EUR": 2, "GBP": 2, "AUD": 2, "CAD": 2, "CHF": 2, "CNY": 2,
	"HKD": 2, "SGD": 2, "TWD": 2, "INR": 2, "NZD": 2, "SEK": 2, "NOK": 2,
	"DKK": 2, "THB": 2, "PHP": 2, "MYR": 2, "IDR": 2, "BRL": 2, "MXN": 2,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

// Currency is an ISO 4217 code with its minor unit.
type Currency struct {
	Code   string
	Places int32
}

// LookupCurrency returns the currency for an ISO 4217 code.
func LookupCurrency(code string) (Currency, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	p, ok := minorUnits[code]
	if !ok {
		return Currency{}, fmt.Errorf("unknown currency %q", code)
	}
	return Currency{Code: code, Places: p}, nil
}

// Format renders an amount with exactly the currency's minor-unit digits.
func (c Currency) Format(d decimal.Decimal) string { return d.StringFixed(c.Places) }
