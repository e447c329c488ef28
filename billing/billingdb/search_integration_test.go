package billingdb

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/shopspring/decimal"
)

// Get and searches answer from each receivable's newest revision only: a draft that
// was finalised is found by status=final and not by status=draft, an old
// total or a number it lost match nothing; pages follow (period, id) with
// nothing skipped or repeated; another tenant's receivables never appear.
func TestGetAndSearchReadTheNewestRevision(t *testing.T) {
	conn, _ := testenv.ClickHouse(t, "bdb")
	s := New(conn)
	ctx := context.Background()
	// Unmerged revisions, as after a busy close: every read must pick the
	// newest row itself.
	if err := conn.Exec(ctx, "SYSTEM STOP MERGES receivables"); err != nil {
		t.Fatal(err)
	}
	const customers = 7
	seedReceivables(t, s, "acme", customers, 3) // 2019-01..2019-09 final (1 % voided), 2019-10 draft
	seedReceivables(t, s, "globex", 2, 3)
	// One 2019-10 draft is finalised afterwards, with a new total; another
	// is discarded.
	fin := benchReceivable("acme", 3, "2019-10", 3)
	fin.Total = decimal.RequireFromString("123456")
	issued := time.Date(2019, 11, 3, 0, 0, 0, 0, time.UTC)
	disc := benchReceivable("acme", 4, "2019-10", 3)
	if err := s.WriteReceivables(ctx, []Write{
		{Stored: Stored{Receivable: fin, Status: billing.StatusFinal, NumberSeq: 999, Number: "INV-0000999", IssuedAt: issued, Revision: 5,
			LineCount: 3}, KeepLines: true},
		{Stored: Stored{Receivable: disc, Status: billing.StatusDiscarded, Revision: 2, LineCount: 3}, KeepLines: true},
	}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		tenant, id string
		want       string // status/revision, "" for none
	}{
		{"acme", fin.ID, "final/5"}, {"acme", disc.ID, "discarded/2"},
		{"acme", billing.ReceivableID("acme", "bc000000", "2019-01"), "final/2"},
		{"acme", billing.ReceivableID("acme", "bc000001", "2019-10"), "draft/1"},
		{"globex", fin.ID, ""}, {"acme", billing.ReceivableID("globex", "bc000000", "2019-01"), ""},
	} {
		st, err := s.Get(ctx, g.tenant, g.id)
		got := ""
		if st != nil {
			got = fmt.Sprintf("%s/%d", st.Status, st.Revision)
		}
		if err != nil || got != g.want {
			t.Errorf("Get(%s, %s): %q (%v), want %q", g.tenant, g.id, got, err, g.want)
		}
	}
	if st, _ := s.Get(ctx, "acme", fin.ID); st == nil || !st.Total.Equal(fin.Total) || st.Number != "INV-0000999" || !st.IssuedAt.Equal(issued) {
		t.Errorf("Get of the finalised receivable: %+v", st)
	}
	ids := func(rs []*Stored) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.Customer+"/"+r.Period+"/"+string(r.Status))
		}
		return out
	}
	d := func(s string) *decimal.Decimal { x := decimal.RequireFromString(s); return &x }
	tm := func(t time.Time) *time.Time { return &t }
	for _, tt := range []struct {
		name string
		f    Filter
		want []string
	}{
		{"draft period", Filter{Period: "2019-10", Status: "draft"},
			[]string{"c000000/2019-10/draft", "c000001/2019-10/draft", "c000002/2019-10/draft", "c000005/2019-10/draft", "c000006/2019-10/draft"}},
		{"final in the draft period", Filter{Period: "2019-10", Status: "final"}, []string{"c000003/2019-10/final"}},
		{"discarded", Filter{Status: "discarded"}, []string{"c000004/2019-10/discarded"}},
		{"new total", Filter{MinTotal: d("123456"), MaxTotal: d("123456")}, []string{"c000003/2019-10/final"}},
		{"number", Filter{Number: "INV-0000999"}, []string{"c000003/2019-10/final"}},
		{"issued", Filter{IssuedFrom: tm(issued), IssuedTo: tm(issued.Add(time.Second))}, []string{"c000003/2019-10/final"}},
		{"customer", Filter{Customer: "c000003", Status: "final", Period: "2019-10"}, []string{"c000003/2019-10/final"}},
		// Receivable 7 of each closed period (i%100 == 7) does not exist with
		// 7 customers; customer c000000 of 2019-01 got number 1.
		{"voided", Filter{Status: "voided"}, []string{}},
		{"first number", Filter{Number: "INV-0000001"}, []string{"c000000/2019-01/final"}},
		{"other tenant's customer only", Filter{Customer: "c000099"}, []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Search(ctx, "acme", tt.f, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			g := ids(got) // in (period, id) order: ids are hashes, so sort to compare as sets
			slices.Sort(g)
			if !slices.Equal(g, tt.want) {
				t.Errorf("search %+v: %q, want %q", tt.f, g, tt.want)
			}
			n, err := s.Count(ctx, "acme", tt.f)
			if err != nil || n != uint64(len(tt.want)) {
				t.Errorf("count %+v: %d (%v), want %d", tt.f, n, err, len(tt.want))
			}
		})
	}
	// Paging through everything, 4 at a time: every receivable once, in
	// (period, id) order, only acme's.
	var all []*Stored
	var after *Key
	for {
		page, err := s.Search(ctx, "acme", Filter{}, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 4 {
			break
		}
		last := page[len(page)-1]
		after = &Key{Period: last.Period, ID: last.ID}
	}
	if len(all) != customers*len(benchPeriods) {
		t.Fatalf("paged %d receivables, want %d", len(all), customers*len(benchPeriods))
	}
	seen := map[string]bool{}
	for i, r := range all {
		if r.Tenant != "acme" || seen[r.ID] {
			t.Fatalf("%s of %s (seen: %v)", r.ID, r.Tenant, seen[r.ID])
		}
		seen[r.ID] = true
		if i > 0 && fmt.Sprint(all[i-1].Period, all[i-1].ID) >= fmt.Sprint(r.Period, r.ID) {
			t.Fatalf("out of order at %d: %s/%s after %s/%s", i, r.Period, r.ID, all[i-1].Period, all[i-1].ID)
		}
	}
}

// Lines answers a receivable's newest revision: a line the newest revision
// no longer has is left out, a changed line shows its new values and place,
// pages follow (seq, id), with every revision's rows unmerged.
func TestLinesReadTheNewestRevision(t *testing.T) {
	conn, _ := testenv.ClickHouse(t, "bdb")
	s := New(conn)
	ctx := context.Background()
	if err := conn.Exec(ctx, "SYSTEM STOP MERGES receivable_lines"); err != nil {
		t.Fatal(err)
	}
	r1 := benchReceivable("acme", 1, "2019-03", 5) // lines m1..m4 and the tax line
	r2 := benchReceivable("acme", 1, "2019-03", 5)
	gone := r2.Lines[1].ID // m2 is gone in revision 2
	r2.Lines = append(r2.Lines[:1], r2.Lines[2:]...)
	r2.Lines[1].Amount = decimal.RequireFromString("777") // m3 changed
	for i := range r2.Lines {
		r2.Lines[i].Seq = i + 1
	}
	for range 2 { // each write delivered twice
		if err := s.WriteReceivables(ctx, []Write{{Stored: Stored{Receivable: r1, Status: billing.StatusDraft, Revision: 1}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteReceivables(ctx, []Write{{Stored: Stored{Receivable: r2, Status: billing.StatusDraft, Revision: 2}, Gone: []string{gone}}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var after *LineKey
	for {
		page, err := s.Lines(ctx, "acme", r1.ID, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page {
			got = append(got, fmt.Sprintf("%d %s %s", l.Seq, l.Item, l.Amount))
		}
		if len(page) < 2 {
			break
		}
		after = &LineKey{Seq: uint32(page[len(page)-1].Seq), ID: page[len(page)-1].ID}
	}
	want := []string{"1 m1 " + r2.Lines[0].Amount.String(), "2 m3 777", "3 m4 " + r2.Lines[2].Amount.String(), "4  " + r2.Lines[3].Amount.String()}
	if !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
	if ls, err := s.Lines(ctx, "globex", r1.ID, nil, 10); err != nil || len(ls) != 0 {
		t.Errorf("another tenant reads %d lines (%v)", len(ls), err)
	}
}
