package pricing

import (
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

// PeriodID names a billing period by the month it ends in: year*12 +
// month-1. With closing day 0 the period is that calendar month; with
// closing day d (1-28) it runs from day d+1 of the previous month to the end
// of day d of that month. Periods are civil days in the basic contract's
// time zone.
type PeriodID int32

// PeriodOfMonth returns the id of the period that ends in year-month.
func PeriodOfMonth(year int, month time.Month) PeriodID {
	return PeriodID(year*12 + int(month) - 1)
}

// ParsePeriod parses "YYYY-MM".
func ParsePeriod(s string) (PeriodID, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil || len(s) != 7 {
		return 0, fmt.Errorf("period %q: want YYYY-MM", s)
	}
	return PeriodOfMonth(t.Year(), t.Month()), nil
}

// Year of the month the period ends in.
func (p PeriodID) Year() int { return int(p) / 12 }

// Month the period ends in.
func (p PeriodID) Month() time.Month { return time.Month(int(p)%12 + 1) }

// String renders "YYYY-MM".
func (p PeriodID) String() string { return fmt.Sprintf("%04d-%02d", p.Year(), int(p.Month())) }

// Period is one billing period of a basic contract.
type Period struct {
	ID PeriodID
	// Start and End are the first and last day (inclusive), civil dates in
	// Location.
	Start, End catalog.Date
	Location   *time.Location
}

// StartTime is the first instant of the period.
func (p Period) StartTime() time.Time { return p.Start.In(p.Location) }

// EndTime is the first instant after the period (exclusive end).
func (p Period) EndTime() time.Time { return p.End.AddDays(1).In(p.Location) }

// Days is the number of days in the period.
func (p Period) Days() int { return int(dayOf(p.End) - dayOf(p.Start) + 1) }

// periodOf returns the period containing the civil day y-m-d.
func (b *basic) periodOf(y int, m time.Month, d int) Period {
	if b.closingDay != 0 && d > b.closingDay {
		m++
		if m > 12 {
			m, y = 1, y+1
		}
	}
	return b.period(PeriodOfMonth(y, m))
}

// period returns the period with the given id.
func (b *basic) period(id PeriodID) Period {
	y, m := id.Year(), id.Month()
	p := Period{ID: id, Location: b.loc}
	if b.closingDay == 0 {
		p.Start = catalog.Date{Year: y, Month: m, Day: 1}
		p.End = catalog.Date{Year: y, Month: m, Day: daysIn(y, m)}
		return p
	}
	p.End = catalog.Date{Year: y, Month: m, Day: b.closingDay}
	py, pm := y, m-1
	if pm < 1 {
		py, pm = y-1, 12
	}
	p.Start = catalog.Date{Year: py, Month: pm, Day: b.closingDay + 1}
	if p.Start.Day > daysIn(py, pm) { // closing day 28 after a common February
		p.Start = catalog.Date{Year: y, Month: m, Day: 1}
	}
	return p
}

func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// dayNumber is the number of days from 1970-01-01 to the civil date
// (proleptic Gregorian; Howard Hinnant's days_from_civil).
func dayNumber(y int, m time.Month, d int) int32 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (int(m) + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468)
}

func dayOf(d catalog.Date) int32 { return dayNumber(d.Year, d.Month, d.Day) }

// dateOf is the inverse of dayNumber.
func dateOf(n int32) catalog.Date {
	z := int(n) + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return catalog.Date{Year: y, Month: time.Month(m), Day: d}
}
