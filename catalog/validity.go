package catalog

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Validity is the half-open interval [ValidFrom, ValidTo) during which a
// master version applies. A nil ValidTo is open-ended.
type Validity struct {
	ValidFrom time.Time  `json:"valid_from"`
	ValidTo   *time.Time `json:"valid_to,omitempty"`
}

// Contains reports whether t falls inside the validity.
func (v Validity) Contains(t time.Time) bool {
	return !t.Before(v.ValidFrom) && (v.ValidTo == nil || t.Before(*v.ValidTo))
}

// Overlaps reports whether two validities share an instant.
func (v Validity) Overlaps(o Validity) bool {
	return (o.ValidTo == nil || v.ValidFrom.Before(*o.ValidTo)) && (v.ValidTo == nil || o.ValidFrom.Before(*v.ValidTo))
}

func (v Validity) check(field string, errs *Errors) {
	if v.ValidFrom.IsZero() {
		errs.Add(field+".valid_from", "is required")
	}
	if v.ValidTo != nil && !v.ValidTo.After(v.ValidFrom) {
		errs.Add(field+".valid_to", "must be after valid_from")
	}
}

// checkNoOverlap reports every pair of overlapping validities in vs, by index.
func checkNoOverlap(field string, vs []Validity, errs *Errors) {
	idx := make([]int, len(vs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return vs[idx[a]].ValidFrom.Before(vs[idx[b]].ValidFrom) })
	for k := 1; k < len(idx); k++ {
		prev, cur := vs[idx[k-1]], vs[idx[k]]
		if prev.Overlaps(cur) {
			errs.Add(fmt.Sprintf("%s[%d]", field, idx[k]), fmt.Sprintf("validity overlaps %s[%d]", field, idx[k-1]))
		}
	}
}

// Date is a civil date (no time of day, no zone), written "YYYY-MM-DD".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// DateOf returns the civil date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// String renders "YYYY-MM-DD".
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// In returns the first instant of d in loc.
func (d Date) In(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// Before reports whether d is an earlier day than o.
func (d Date) Before(o Date) bool { return d.compare(o) < 0 }

// After reports whether d is a later day than o.
func (d Date) After(o Date) bool { return d.compare(o) > 0 }

func (d Date) compare(o Date) int {
	switch {
	case d.Year != o.Year:
		return d.Year - o.Year
	case d.Month != o.Month:
		return int(d.Month) - int(o.Month)
	}
	return d.Day - o.Day
}

// AddDays returns d moved by n days.
func (d Date) AddDays(n int) Date { return DateOf(d.In(time.UTC).AddDate(0, 0, n)) }

// MarshalJSON writes "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "YYYY-MM-DD".
func (d *Date) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		got := string(b)
		switch {
		case got[0] == '{':
			got = "an object"
		case got[0] == '[':
			got = "an array"
		case len(got) > 40:
			got = "a long value"
		}
		return fmt.Errorf("wrong type: must be a date YYYY-MM-DD (a string), e.g. 2026-04-01, got %s", got)
	}
	v, err := ParseDate(s)
	if err != nil {
		return fmt.Errorf("must be a date YYYY-MM-DD, e.g. 2026-04-01, got %q", s)
	}
	*d = v
	return nil
}

// DateRange is an inclusive range of days; a nil End is open-ended.
type DateRange struct {
	Start Date  `json:"start_date"`
	End   *Date `json:"end_date,omitempty"`
}

// Contains reports whether day falls inside the range.
func (r DateRange) Contains(day Date) bool {
	return !day.Before(r.Start) && (r.End == nil || !day.After(*r.End))
}

// Overlaps reports whether two ranges share a day.
func (r DateRange) Overlaps(o DateRange) bool {
	return (o.End == nil || !r.Start.After(*o.End)) && (r.End == nil || !o.Start.After(*r.End))
}

func (r DateRange) check(field string, errs *Errors) {
	if r.Start.IsZero() {
		errs.Add(join(field, "start_date"), "is required")
	}
	if r.End != nil && r.End.Before(r.Start) {
		errs.Add(join(field, "end_date"), "must not be before start_date")
	}
}

// join builds a field path: join("plans[0]", "end_date") is
// "plans[0].end_date", join("", "end_date") is "end_date".
func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}
