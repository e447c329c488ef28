package pricing

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/shopspring/decimal"
)

// Time-weighted aggregation: usage that is a state over time (seats
// provisioned, gigabytes stored) rather than a count of events. Each
// LevelChange sets the level from its instant until the next change; the
// aggregated quantity is level × time, in days (seat-days: a seat held a
// whole day is 1, half a day 0.5) or in periods (GB-months: 10 GB held half
// of the period is 5).
//
// Exactness: level × time is computed exactly (time at nanosecond
// resolution, decimal level). A fraction of a day or period is a division
// that need not end (one hour is 1/24 of a day), so it is rounded once, half
// away from zero, at QuantityScale (10^-9, the scale usage_daily and every
// stored quantity have) — per day for DayQuantities and UnitDay, once for
// UnitPeriod. Whole and half days, quarter days and any fraction whose
// decimal expansion ends within 9 places are exact.

// QuantityScale is the number of fraction digits of a time-weighted quantity.
const QuantityScale = 9

// LevelChange is one state change: from At on, the level is Level.
type LevelChange struct {
	At    time.Time
	Level decimal.Decimal
}

// TimeUnit is the unit of a time-weighted quantity.
type TimeUnit int

// The units: a civil day (seat-days), or the whole range asked for (a
// billing period: GB-months).
const (
	UnitDay TimeUnit = iota + 1
	UnitPeriod
)

// DayQuantity is the time-weighted quantity of one civil day.
type DayQuantity struct {
	Day catalog.Date
	// LevelSeconds is Σ level × seconds held within the day, exact.
	LevelSeconds decimal.Decimal
	// DaySeconds is the day's length (23 or 25 hours on a DST change).
	DaySeconds int64
	// Quantity is LevelSeconds / DaySeconds rounded at QuantityScale: the
	// day fraction (1 for a whole day at level 1).
	Quantity decimal.Decimal
}

// ErrUnordered means level changes were not in time order.
var ErrUnordered = errors.New("pricing: level changes out of time order")

// checkChanges verifies the changes are in time order (equal instants: the
// later one in the slice wins, as the later record of the same instant).
func checkChanges(changes []LevelChange) error {
	for i := 1; i < len(changes); i++ {
		if changes[i].At.Before(changes[i-1].At) {
			return fmt.Errorf("%w: %s after %s", ErrUnordered, changes[i].At.Format(time.RFC3339Nano), changes[i-1].At.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// levelAt returns the index of the first change after t, and the level in
// effect at t (zero before the first change).
func levelAt(changes []LevelChange, t time.Time) (int, decimal.Decimal) {
	i := sort.Search(len(changes), func(i int) bool { return changes[i].At.After(t) })
	if i == 0 {
		return 0, decimal.Zero
	}
	return i, changes[i-1].Level
}

// nanos is d as a decimal number of seconds, exact.
func seconds(d time.Duration) decimal.Decimal { return decimal.New(int64(d), -9) }

// LevelTime returns Σ level × seconds over [from, to): the exact level-time
// integral. The level before the first change is zero; a change before from
// sets the level in effect at from.
func LevelTime(changes []LevelChange, from, to time.Time) (decimal.Decimal, error) {
	if err := checkChanges(changes); err != nil {
		return decimal.Zero, err
	}
	return levelTime(changes, from, to), nil
}

func levelTime(changes []LevelChange, from, to time.Time) decimal.Decimal {
	if !to.After(from) {
		return decimal.Zero
	}
	i, level := levelAt(changes, from)
	sum, at := decimal.Zero, from
	for ; i < len(changes) && changes[i].At.Before(to); i++ {
		if !level.IsZero() {
			sum = sum.Add(level.Mul(seconds(changes[i].At.Sub(at))))
		}
		at, level = changes[i].At, changes[i].Level
	}
	if !level.IsZero() {
		sum = sum.Add(level.Mul(seconds(to.Sub(at))))
	}
	return sum
}

// DayQuantities returns the time-weighted quantity of every civil day in loc
// from the day first to the day last (inclusive), in day order: the day
// fraction each level was held, times the level. Days with nothing held
// have a zero quantity.
func DayQuantities(changes []LevelChange, first, last catalog.Date, loc *time.Location) ([]DayQuantity, error) {
	if err := checkChanges(changes); err != nil {
		return nil, err
	}
	if last.Before(first) {
		return nil, nil
	}
	var out []DayQuantity
	for d := first; !d.After(last); d = d.AddDays(1) {
		start, end := d.In(loc), d.AddDays(1).In(loc)
		ds := int64(end.Sub(start) / time.Second)
		// A day no change falls into is held whole at one level: its
		// quantity is the level itself (no division).
		i, level := levelAt(changes, start)
		if i == len(changes) || !changes[i].At.Before(end) {
			out = append(out, DayQuantity{Day: d, LevelSeconds: level.Mul(decimal.NewFromInt(ds)), DaySeconds: ds, Quantity: level})
			continue
		}
		ls := levelTime(changes, start, end)
		q := decimal.Zero
		if !ls.IsZero() {
			q = ls.DivRound(decimal.NewFromInt(ds), QuantityScale)
		}
		out = append(out, DayQuantity{Day: d, LevelSeconds: ls, DaySeconds: ds, Quantity: q})
	}
	return out, nil
}

// TimeWeighted returns the time-weighted quantity of the civil days first to
// last (inclusive) in loc: with UnitDay the sum of the day fractions (as
// DayQuantities, each day rounded), with UnitPeriod the level-time divided
// by the length of the whole range, rounded once. The result can be priced
// like any aggregated quantity (Cost of a rate table).
func TimeWeighted(changes []LevelChange, first, last catalog.Date, loc *time.Location, unit TimeUnit) (decimal.Decimal, error) {
	switch unit {
	case UnitDay:
		days, err := DayQuantities(changes, first, last, loc)
		if err != nil {
			return decimal.Zero, err
		}
		sum := decimal.Zero
		for _, d := range days {
			sum = sum.Add(d.Quantity)
		}
		return sum, nil
	case UnitPeriod:
		if err := checkChanges(changes); err != nil {
			return decimal.Zero, err
		}
		if last.Before(first) {
			return decimal.Zero, nil
		}
		start, end := first.In(loc), last.AddDays(1).In(loc)
		ls := levelTime(changes, start, end)
		if ls.IsZero() {
			return decimal.Zero, nil
		}
		return ls.DivRound(seconds(end.Sub(start)), QuantityScale), nil
	default:
		return decimal.Zero, fmt.Errorf("pricing: unknown time unit %d", unit)
	}
}
