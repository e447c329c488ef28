package pricing

import (
	"errors"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ch(t, level string) LevelChange { return LevelChange{At: at(t), Level: dec(level)} }

func TestDayQuantities(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		changes     []LevelChange
		first, last string
		loc         *time.Location
		want        []string // quantity per day
	}{
		{"whole days", []LevelChange{ch("2026-03-01T00:00:00Z", "1")}, "2026-03-01", "2026-03-03", time.UTC, []string{"1", "1", "1"}},
		{"provisioned at noon", []LevelChange{ch("2026-03-01T12:00:00Z", "1")}, "2026-03-01", "2026-03-02", time.UTC, []string{"0.5", "1"}},
		{"removed at 18:00", []LevelChange{ch("2026-02-01T00:00:00Z", "1"), ch("2026-03-02T18:00:00Z", "0")},
			"2026-03-01", "2026-03-03", time.UTC, []string{"1", "0.75", "0"}},
		{"level 3 then 1", []LevelChange{ch("2026-03-01T00:00:00Z", "3"), ch("2026-03-01T06:00:00Z", "1")},
			"2026-03-01", "2026-03-01", time.UTC, []string{"1.5"}},
		{"before the first change nothing", []LevelChange{ch("2026-03-05T00:00:00Z", "1")}, "2026-03-01", "2026-03-02", time.UTC, []string{"0", "0"}},
		{"one hour rounds at 1e-9", []LevelChange{ch("2026-03-01T00:00:00Z", "1"), ch("2026-03-01T01:00:00Z", "0")},
			"2026-03-01", "2026-03-01", time.UTC, []string{"0.041666667"}},
		{"Tokyo days", []LevelChange{ch("2026-03-01T03:00:00Z", "2")}, "2026-03-01", "2026-03-02", tokyo, []string{"1", "2"}},
		{"DST day has 23 hours", []LevelChange{ch("2026-03-08T00:00:00-05:00", "1"), ch("2026-03-08T12:00:00-04:00", "0")},
			"2026-03-08", "2026-03-08", ny, []string{"0.47826087"}}, // 11 of 23 hours
		{"same instant: the later change wins", []LevelChange{ch("2026-03-01T00:00:00Z", "5"), ch("2026-03-01T00:00:00Z", "1")},
			"2026-03-01", "2026-03-01", time.UTC, []string{"1"}},
		{"nanoseconds exact", []LevelChange{ch("2026-03-01T00:00:00Z", "1"), ch("2026-03-01T12:00:00.000000001Z", "0")},
			"2026-03-01", "2026-03-01", time.UTC, []string{"0.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DayQuantities(tc.changes, date(tc.first), date(tc.last), tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d days, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				if !got[i].Quantity.Equal(dec(w)) {
					t.Errorf("day %s: %s, want %s (level-seconds %s of %d)", got[i].Day, got[i].Quantity, w, got[i].LevelSeconds, got[i].DaySeconds)
				}
			}
		})
	}
}

func TestLevelTimeIsExact(t *testing.T) {
	changes := []LevelChange{ch("2026-03-01T00:00:00Z", "2.5"), ch("2026-03-01T00:00:01.000000001Z", "0")}
	got, err := LevelTime(changes, at("2026-02-01T00:00:00Z"), at("2026-04-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if want := dec("2.5000000025"); !got.Equal(want) {
		t.Errorf("level-time %s, want %s", got, want)
	}
}

func TestTimeWeighted(t *testing.T) {
	changes := []LevelChange{ch("2026-04-01T00:00:00Z", "10"), ch("2026-04-16T00:00:00Z", "0")} // 10 GB for 15 of 30 days
	for _, tc := range []struct {
		name string
		unit TimeUnit
		want string
	}{
		{"GB-days", UnitDay, "150"},
		{"GB-months", UnitPeriod, "5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TimeWeighted(changes, date("2026-04-01"), date("2026-04-30"), time.UTC, tc.unit)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(dec(tc.want)) {
				t.Errorf("%s, want %s", got, tc.want)
			}
		})
	}
	if _, err := TimeWeighted(changes, date("2026-04-01"), date("2026-04-30"), time.UTC, TimeUnit(9)); err == nil {
		t.Error("an unknown unit was accepted")
	}
}

func TestTimeWeightedRefusesUnorderedChanges(t *testing.T) {
	changes := []LevelChange{ch("2026-03-02T00:00:00Z", "1"), ch("2026-03-01T00:00:00Z", "0")}
	if _, err := DayQuantities(changes, date("2026-03-01"), date("2026-03-02"), time.UTC); !errors.Is(err, ErrUnordered) {
		t.Errorf("err %v, want ErrUnordered", err)
	}
}

// The sum of the day quantities equals the level-time divided by a day's
// length whenever every day is 86,400 s and the fractions end within 9
// places (spans that are multiples of 27 s here).
func TestDaySumEqualsLevelTime(t *testing.T) {
	changes := []LevelChange{ch("2026-03-01T06:00:00Z", "3"), ch("2026-03-02T18:00:00Z", "1"), ch("2026-03-04T00:45:00Z", "0")}
	days, err := DayQuantities(changes, date("2026-02-28"), date("2026-03-05"), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	sum := dec("0")
	for _, d := range days {
		sum = sum.Add(d.Quantity)
	}
	lt, _ := LevelTime(changes, date("2026-02-28").In(time.UTC), catalog.Date{Year: 2026, Month: 3, Day: 6}.In(time.UTC))
	if want := lt.Div(dec("86400")); !sum.Equal(want) {
		t.Errorf("sum of days %s, want %s", sum, want)
	}
}
