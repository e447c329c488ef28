package reports

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/usagedb"
)

func day(s string) catalog.Date {
	d, err := catalog.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fixture: seats held by users of two customers, March 1-3 2026 (UTC).
func fixture(tenant string) (recs []usagedb.AcceptedRecord, u1first, u3 usagedb.AcceptedRecord) {
	a := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	u1first = rec(tenant, "e1", "c1", "sc1", "seats", "1", utc("2026-03-01T00:00:00Z"), a("user", "u1", "workspace", "w1", "location", "l1"))
	u3 = rec(tenant, "e5", "c1", "sc1", "seats", "2", utc("2026-03-01T06:00:00Z"), a("user", "u3"))
	recs = []usagedb.AcceptedRecord{
		u1first,
		rec(tenant, "e2", "c1", "sc1", "seats", "0", utc("2026-03-02T12:00:00Z"), a("user", "u1", "workspace", "w1", "location", "l1")),
		rec(tenant, "e3", "c1", "sc1", "seats", "1", utc("2026-02-15T00:00:00Z"), a("user", "u2", "location", "l1")),
		rec(tenant, "e4", "c1", "sc1", "seats", "1", utc("2026-03-02T00:00:00Z"), a("user", "u2", "location", "l2")),
		u3,
		rec(tenant, "e6", "c2", "sc2", "seats", "1", utc("2026-03-03T00:00:00Z"), a("user", "u4", "subscriber", "s4")),
		rec(tenant, "e7", "c2", "sc2", "seats", "1", utc("2026-03-04T00:00:00Z"), a("user", "u5")), // after the period
	}
	return recs, u1first, u3
}

func aggregates(t *testing.T, db *DB, tenant string, typ Type, customers []string) []string {
	t.Helper()
	var out []string
	err := db.Aggregates(context.Background(), tenant, "UTC", day("2026-03-01"), day("2026-03-03"), 0, typ, customers, func(a *Aggregate) error {
		out = append(out, fmt.Sprintf("%s %s %s..%s", strings.Join(a.Keys, "/"), a.Quantity, a.Start, a.End))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestComputeDaysAndAggregates(t *testing.T) {
	conn := newConn(t)
	db := NewDB(conn)
	ctx := context.Background()
	recs, u1first, u3 := fixture("t1")
	other, _, _ := fixture("t2")
	store(t, conn, append(recs, other...))
	store(t, conn, recs[:3]) // redelivered records: the same rows
	invalidate(t, conn, u3)
	if _, err := db.ComputeDays(ctx, "t1", day("2026-03-01"), day("2026-03-03"), time.UTC, Version(time.Now())); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ       Type
		customers []string
		want      []string
	}{
		{TypeUser, nil, []string{
			"c1/sc1/seats/u1//w1/l1 1.5 2026-03-01..2026-03-02",
			"c1/sc1/seats/u2///l1 1 2026-03-01..2026-03-01",
			"c1/sc1/seats/u2///l2 2 2026-03-02..2026-03-03",
			"c2/sc2/seats/u4/s4// 1 2026-03-03..2026-03-03",
		}},
		{TypeCustomer, nil, []string{
			"c1/sc1/seats/l1 2.5 2026-03-01..2026-03-02",
			"c1/sc1/seats/l2 2 2026-03-02..2026-03-03",
			"c2/sc2/seats/ 1 2026-03-03..2026-03-03",
		}},
		{TypePartner, nil, []string{"sc1/seats 4.5 2026-03-01..2026-03-03", "sc2/seats 1 2026-03-03..2026-03-03"}},
		{TypePartner, []string{"c2"}, []string{"sc2/seats 1 2026-03-03..2026-03-03"}},
		{TypePartner, []string{}, nil},
	} {
		t.Run(fmt.Sprintf("%s %v", tc.typ, tc.customers), func(t *testing.T) {
			got := aggregates(t, db, "t1", tc.typ, tc.customers)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}

	// Computing again after an invalidation replaces the days: u1 held
	// nothing (its only valid record sets 0), so its rows read as zero.
	invalidate(t, conn, u1first)
	if _, err := db.ComputeDays(ctx, "t1", day("2026-03-01"), day("2026-03-03"), time.UTC, Version(time.Now())); err != nil {
		t.Fatal(err)
	}
	got := aggregates(t, db, "t1", TypePartner, nil)
	if want := []string{"sc1/seats 3 2026-03-01..2026-03-03", "sc2/seats 1 2026-03-03..2026-03-03"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after invalidation got %v, want %v", got, want)
	}
}
