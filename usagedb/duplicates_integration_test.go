package usagedb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestDuplicatesSearch: filters, tenant scope, count, and keyset pages that
// neither skip nor repeat a duplicate — also when one id has several
// duplicates (ties on the id) and when duplicates arrive while paging.
func TestDuplicatesSearch(t *testing.T) {
	conn := newDB(t)
	stage := newStage(conn)
	ctx := context.Background()
	var batch []kafka.Message
	off := int64(100)
	add := func(tenant, id string, differs bool) {
		off++
		batch = append(batch, dupMsg(t, int(off%3), off, duplicate(tenant, id, int(off%3), off, 0, 1, differs)))
	}
	for i := 0; i < 7; i++ {
		add("acme", fmt.Sprintf("e%02d", i), i%2 == 1) // 3 differ
	}
	add("acme", "e03", false) // a second duplicate of e03: ties on the id
	add("acme", "e03", true)
	add("beta", "e00", true) // another tenant
	if err := stage.HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	d := NewDuplicates(conn)

	yes, no := true, false
	for _, tt := range []struct {
		name   string
		f      DuplicateFilter
		tenant string
		want   uint64
	}{
		{"all", DuplicateFilter{}, "acme", 9},
		{"payload differs", DuplicateFilter{PayloadDiffers: &yes}, "acme", 4},
		{"payload equal", DuplicateFilter{PayloadDiffers: &no}, "acme", 5},
		{"customer", DuplicateFilter{UsageFilter: UsageFilter{Customer: "nobody"}}, "acme", 0},
		{"received range", DuplicateFilter{UsageFilter: UsageFilter{From: march, To: march.Add(2 * time.Minute)}}, "acme", 9},
		{"before any", DuplicateFilter{UsageFilter: UsageFilter{To: march}}, "acme", 0},
		{"other tenant", DuplicateFilter{}, "beta", 1},
	} {
		n, err := d.Count(ctx, tt.tenant, tt.f)
		if err != nil || n != tt.want {
			t.Errorf("%s: count %d, %v; want %d", tt.name, n, err, tt.want)
		}
		recs, _, err := d.Search(ctx, tt.tenant, tt.f, nil, 100)
		if err != nil || uint64(len(recs)) != tt.want {
			t.Errorf("%s: search found %d, %v; want %d", tt.name, len(recs), err, tt.want)
		}
	}

	seen := map[string]int{}
	var after *DuplicateKey
	for pages := 0; ; pages++ {
		recs, more, err := d.Search(ctx, "acme", DuplicateFilter{}, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			seen[fmt.Sprintf("%s@%d:%d", r.ID, r.Position.Partition, r.Position.Offset)]++
			if r.FirstPosition.Offset != 1 || r.FirstReceivedAt.IsZero() || r.Quantity != "1" {
				t.Errorf("record %+v lacks its reference to the first record", r)
			}
		}
		if pages == 1 { // a duplicate arrives between pages, after the cursor
			add("acme", "e99", false)
			if err := stage.HandleBatch(ctx, batch[len(batch)-1:]); err != nil {
				t.Fatal(err)
			}
		}
		if !more {
			break
		}
		last := recs[len(recs)-1]
		after = &DuplicateKey{ID: last.ID, Partition: last.Position.Partition, Offset: last.Position.Offset}
	}
	if len(seen) != 10 {
		t.Errorf("paging saw %d distinct duplicates, want 10 (9 + 1 added while paging): %v", len(seen), seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s on %d pages", k, n)
		}
	}
}
