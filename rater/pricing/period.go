package pricing

import (
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

// PeriodID names a billing period. A monthly period is named by the month
// it ends in: year*12 + month-1. With closing day 0 the period is that
// calendar month; with closing day d (1-28) it runs from day d+1 of the
// previous month to the end of day d of that month. A weekly or daily period
// (a basic contract's billing_period) is named by its first day, with a flag
// bit saying which. Periods are civil days in the basic contract's time zone.
type PeriodID int32

// Flags and offset of the weekly and daily period ids: flag | (first day's
// day number + periodDayOffset).
const (
	periodDaily     PeriodID = 1 << 29
	periodWeekly    PeriodID = 1 << 30
	periodDayOffset          = 1 << 22 // day numbers from about 9500 BC
)

// PeriodOfMonth returns the id of the monthly period that ends in year-month.
func PeriodOfMonth(year int, month time.Month) PeriodID {
	return PeriodID(year*12 + int(month) - 1)
}

// PeriodOfDay returns the id of the daily period of the civil date d.
func PeriodOfDay(d catalog.Date) PeriodID { return dayPeriod(periodDaily, dayOf(d)) }

// PeriodOfWeek returns the id of the weekly period starting on the civil
// date d (its first day, whatever weekday weeks start on).
func PeriodOfWeek(start catalog.Date) PeriodID { return dayPeriod(periodWeekly, dayOf(start)) }

func dayPeriod(kind PeriodID, day int32) PeriodID { return kind | PeriodID(day+periodDayOffset) }

// Weekly reports whether the period is a week; Daily whether it is a day.
func (p PeriodID) Weekly() bool { return p&periodWeekly != 0 }

// Daily reports whether the period is one civil day.
func (p PeriodID) Daily() bool { return p&periodDaily != 0 && p&periodWeekly == 0 }

// firstDay is the day number of a weekly or daily period's first day.
func (p PeriodID) firstDay() int32 { return int32(p&^(periodDaily|periodWeekly)) - periodDayOffset }

// days returns a period's first and last day numbers; monthly periods
// depend on the closing day (basic.period).
func (p PeriodID) dayRange() (int32, int32) {
	f := p.firstDay()
	if p.Weekly() {
		return f, f + 6
	}
	return f, f
}

// Next is the period after p of the same kind (the next month, week or
// day).
func (p PeriodID) Next() PeriodID {
	if p.Weekly() {
		return p + 7
	}
	return p + 1
}

// Prev is the period before p of the same kind (callers that compute
// p − 1 assume monthly or daily ids; a week's previous is 7 days earlier).
func (p PeriodID) Prev() PeriodID {
	if p.Weekly() {
		return p - 7
	}
	return p - 1
}

// SameKind reports whether p and q are both monthly, both weekly or both
// daily periods.
func (p PeriodID) SameKind(q PeriodID) bool {
	return p&(periodDaily|periodWeekly) == q&(periodDaily|periodWeekly)
}

// ParsePeriod parses "YYYY-MM" (a monthly period), "YYYY-MM-DD" (a daily
// period) or "YYYY-MM-DD/P1W" (the weekly period starting that day; ISO
// 8601's start/duration).
func ParsePeriod(s string) (PeriodID, error) {
	switch {
	case len(s) == 7:
		if t, err := time.Parse("2006-01", s); err == nil {
			return PeriodOfMonth(t.Year(), t.Month()), nil
		}
	case len(s) == 10:
		if d, err := catalog.ParseDate(s); err == nil {
			return PeriodOfDay(d), nil
		}
	case len(s) == 14 && s[10:] == "/P1W":
		if d, err := catalog.ParseDate(s[:10]); err == nil {
			return PeriodOfWeek(d), nil
		}
	}
	return 0, fmt.Errorf("period %q: want YYYY-MM (monthly), YYYY-MM-DD (daily) or YYYY-MM-DD/P1W (weekly)", s)
}

// LastDay is the last civil day of a weekly or daily period, and of a
// monthly one the last day of the month it ends in (its end at the latest:
// with a closing day d it ends on day d of that month). It orders periods
// of different lengths by their end.
func (p PeriodID) LastDay() catalog.Date {
	if p.Weekly() || p.Daily() {
		_, last := p.dayRange()
		return dateOf(last)
	}
	y, m := p.Year(), p.Month()
	return catalog.Date{Year: y, Month: m, Day: daysIn(y, m)}
}

// Year of the month the period ends in.
func (p PeriodID) Year() int {
	if p.Weekly() || p.Daily() {
		_, last := p.dayRange()
		return dateOf(last).Year
	}
	return int(p) / 12
}

// Month the period ends in.
func (p PeriodID) Month() time.Month {
	if p.Weekly() || p.Daily() {
		_, last := p.dayRange()
		return dateOf(last).Month
	}
	return time.Month(int(p)%12 + 1)
}

// String renders "YYYY-MM", "YYYY-MM-DD" (daily) or "YYYY-MM-DD/P1W"
// (weekly, by its first day).
func (p PeriodID) String() string {
	switch {
	case p.Weekly():
		return dateOf(p.firstDay()).String() + "/P1W"
	case p.Daily():
		return dateOf(p.firstDay()).String()
	}
	return fmt.Sprintf("%04d-%02d", p.Year(), int(p.Month()))
}

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

// periodOf returns the billing period containing the civil day y-m-d.
func (b *basic) periodOf(y int, m time.Month, d int) Period {
	if b.cycle != cycleMonthly {
		return b.dayCycleOf(dayNumber(y, m, d))
	}
	return b.monthOf(y, m, d)
}

// Billing period lengths of a compiled basic contract.
const (
	cycleMonthly uint8 = iota
	cycleWeekly
	cycleDaily
)

// dayCycleOf returns the weekly or daily period containing a day.
func (b *basic) dayCycleOf(day int32) Period {
	if b.cycle == cycleWeekly {
		return b.period(b.weekOf(day))
	}
	return b.period(dayPeriod(periodDaily, day))
}

// weekOf is the id of the week (starting on the basic contract's week
// start) holding a day.
func (b *basic) weekOf(day int32) PeriodID {
	wd := (int(day)%7 + 7 + 4) % 7 // 1970-01-01 was a Thursday
	return dayPeriod(periodWeekly, day-int32((wd-int(b.weekStart)+7)%7))
}

// monthOf returns the monthly period (closing day) containing y-m-d.
func (b *basic) monthOf(y int, m time.Month, d int) Period {
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
	p := Period{ID: id, Location: b.loc}
	if id.Weekly() || id.Daily() {
		f, l := id.dayRange()
		p.Start, p.End = dateOf(f), dateOf(l)
		return p
	}
	y, m := id.Year(), id.Month()
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
