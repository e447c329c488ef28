package pricing

import (
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

// Issue 19 item 9: rating groups as Zuora defines them. Zuora's tiered
// price table (0-10 at 2.00, 11-20 at 3.00, 21 and more at 5.00) with usage
// of 3, 5 and 7 on three days: by billing period 15 = 10 × 2 + 5 × 3 = 35.
// We add a fourth record of 6 on the third day and two uploads (the first
// two records in one file, the last two in another). Each group is priced on
// its own and the period charged the sum:
//
//   - billing_period: 21 → 10 × 2 + 10 × 3 + 1 × 5 = 55
//   - usage_start_date: 3 → 6, 5 → 10, 7 + 6 = 13 → 20 + 9 = 29: 45
//   - usage_record: 6 + 10 + 14 + 12 = 42
//   - upload: 3 + 5 = 8 → 16, 7 + 6 = 13 → 29: 45
//
// Dates moved from January 2020 to January 2019.
// https://docs.zuora.com/en/zuora-billing/bill-your-customer/rating/usage-rating-by-group/usage-rating-by-group-overview
// https://docs.zuora.com/en/zuora-billing/bill-your-customer/rating/on-demand-usage-rating/rating-by-billing-period
func TestRatingGroups(t *testing.T) {
	zuora := graduated([3]string{"10", "2", "0"}, [3]string{"20", "3", "0"}, [3]string{"", "5", "0"})
	day := func(d, h int) time.Time { return time.Date(2019, 1, d, h, 0, 0, 0, time.UTC) }
	events := func() []schemas.UsageEvent {
		evs := []schemas.UsageEvent{event("u1", day(1, 3), "3"), event("u2", day(2, 3), "5"), event("u3", day(3, 3), "7"), event("u4", day(3, 5), "6")}
		for i := range evs {
			job, file := "job-a", "january-a.csv"
			if i >= 2 {
				job, file = "job-b", "january-b.csv"
			}
			evs[i].Import = &schemas.ImportSource{File: file, Job: job}
		}
		return evs
	}
	cases := []struct {
		group  catalog.RatingGroup
		rt     catalog.RateTableVersion
		total  int64
		groups []string // the keys' groups, in order of first record
	}{
		{"", zuora, 55, []string{""}},
		{catalog.GroupBillingPeriod, zuora, 55, []string{""}},
		{catalog.GroupUsageStartDate, zuora, 45, []string{"2019-01-01", "2019-01-02", "2019-01-03"}},
		{catalog.GroupUsageRecord, zuora, 42, []string{"u1", "u2", "u3", "u4"}},
		{catalog.GroupUpload, zuora, 45, []string{"job-a", "job-b"}},
		// Zuora rates other models by billing period: a package of 10 units
		// at 7 over the 21 units: 3 blocks.
		{catalog.GroupUsageRecord, catalog.RateTableVersion{Model: catalog.ModelPackage, Package: &catalog.Package{Size: dec("10"), Price: dec("7"), Rounding: "up"}}, 21, []string{""}},
	}
	for _, tc := range cases {
		t.Run(string(tc.group)+"/"+string(tc.rt.Model), func(t *testing.T) {
			c := oneFee(tc.rt, "JPY", since2018, func(c *catalog.Catalogue) {
				c.Plans[0].Versions[0].RatingGroup = tc.group
				c.BasicContracts[0].TimeZone = "UTC"
				c.BasicContracts[0].Start, c.ServiceContracts[0].Start, c.ServiceContracts[0].Plans[0].Start = date("2018-01-01"), date("2018-01-01"), date("2018-01-01")
			})
			e := compile(t, c)
			evs := events()
			b := e.RatePeriod(evs)
			if len(b.Unrated) != 0 {
				t.Fatalf("unrated %+v", b.Unrated)
			}
			var total int64
			var groups []string
			seen := map[Key]bool{}
			for _, l := range b.Lines {
				total += l.Line.Amount
				if !seen[l.Key] {
					seen[l.Key] = true
					groups = append(groups, l.Key.Group)
				}
			}
			if total != tc.total || strings.Join(groups, ",") != strings.Join(tc.groups, ",") {
				t.Fatalf("total %d in groups %q, want %d in %q", total, groups, tc.total, tc.groups)
			}
			// The stream (states as bytes) gives the same lines.
			s := newStream(e)
			var st int64
			for i := range evs {
				ls, err := s.rate(&evs[i])
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range ls {
					st += l.Line.Amount
				}
			}
			if st != tc.total {
				t.Fatalf("stream total %d, want %d", st, tc.total)
			}
		})
	}
	// API records (no import) are one group of their own under upload.
	c := oneFee(zuora, "JPY", since2018, func(c *catalog.Catalogue) {
		c.Plans[0].Versions[0].RatingGroup = catalog.GroupUpload
		c.BasicContracts[0].Start, c.ServiceContracts[0].Start, c.ServiceContracts[0].Plans[0].Start = date("2018-01-01"), date("2018-01-01"), date("2018-01-01")
	})
	e := compile(t, c)
	ev := event("api", day(5, 3), "4")
	cs, err := e.Resolve(&ev, nil)
	if err != nil || cs[0].Key.Group != "" || cs[0].Key.Item() != "f" {
		t.Fatalf("API record: %+v %v", cs, err)
	}
	// The group is in the storage key and the item; without one the key is
	// encoded as before.
	k := Key{Tenant: "t", Customer: "c", Contract: "k", Fee: "f", Rate: "rt", Period: PeriodOfMonth(2019, time.January)}
	plain := string(k.AppendBinary(nil))
	k.Group = "2019-01-03"
	if grouped := string(k.AppendBinary(nil)); !strings.HasPrefix(grouped, plain) || grouped == plain || k.Item() != "f@2019-01-03" {
		t.Fatalf("grouped key %q item %q", grouped, k.Item())
	}
}

func TestRatingGroupValidation(t *testing.T) {
	c := oneFee(perUnit("1"), "JPY", func(c *catalog.Catalogue) { c.Plans[0].Versions[0].RatingGroup = "by_file" })
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "plans[0].versions[0].rating_group: must be billing_period, usage_start_date, usage_record or upload") {
		t.Fatalf("got %v", err)
	}
}
