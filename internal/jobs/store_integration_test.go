package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestStoreKeepsTheNewestVersionAndFiltersOnIt(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ten, other := newTenant("store"), newTenant("store-other")
	a := createCount(t, s, ten, 1)
	b := createCount(t, s, ten, 1)
	createCount(t, s, other, 1)
	// a moves on: processing, then completed.
	run := &Run{r: &Runner{o: Options{Store: s}}, lease: &Lease{ls: &Leases{ttl: time.Hour}, renewed: time.Now(), lost: make(chan struct{})}, epoch: 1, job: a}
	if err := run.update(ctx, func(j *Job) { j.Status = StatusProcessing }); err != nil {
		t.Fatal(err)
	}
	if err := run.update(ctx, func(j *Job) { j.Status, j.FinishedAt = StatusCompleted, time.Now() }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, ten, a.ID)
	if err != nil || got.Status != StatusCompleted || got.FinishedAt.IsZero() || got.Version != 1<<32|2 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, other, a.ID); err != ErrNotFound {
		t.Errorf("another tenant's Get: %v, want ErrNotFound", err)
	}
	// Filtering on status sees only the newest version of each job.
	for _, tt := range []struct {
		f    Filter
		want []string
	}{
		{Filter{Status: StatusPending}, []string{b.ID}},
		{Filter{Status: StatusProcessing}, nil},
		{Filter{Status: StatusCompleted}, []string{a.ID}},
		{Filter{Kind: countKind}, []string{a.ID, b.ID}},
		{Filter{Kind: "other"}, nil},
	} {
		list, err := s.List(ctx, ten, tt.f, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range list {
			ids = append(ids, j.ID)
		}
		if !sameSet(ids, tt.want) {
			t.Errorf("List(%+v) = %v, want %v", tt.f, ids, tt.want)
		}
		n, err := s.Count(ctx, ten, tt.f)
		if err != nil || n != uint64(len(tt.want)) {
			t.Errorf("Count(%+v) = %d, %v", tt.f, n, err)
		}
	}
	unfinished, err := s.Unfinished(ctx, []string{countKind})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range unfinished {
		if j.ID == a.ID {
			t.Error("a completed job is listed as unfinished")
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func TestListPagesNewestFirst(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ten := newTenant("page")
	var want []string
	for i := range 5 {
		p, _ := json.Marshal(countParams{N: uint64(i)})
		j := Job{Tenant: ten, ID: NewID(), Kind: countKind, Params: p}
		j, err := s.Create(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, j.ID)
	}
	var got []string
	var after *ListKey
	for page := 0; ; page++ {
		list, err := s.List(ctx, ten, Filter{}, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range list {
			got = append(got, j.ID)
		}
		if len(list) < 2 {
			break
		}
		last := list[len(list)-1]
		after = &ListKey{CreatedAt: last.CreatedAt, ID: last.ID}
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if !sameSet(got, want) || len(got) != 5 {
		t.Fatalf("pages gave %v, want each of %v once", got, want)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("%s listed twice", id)
		}
		seen[id] = true
	}
}

func TestErrorReportRowsReplaceThemselves(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ten := newTenant("errs")
	j := createCount(t, s, ten, 1)
	rows := []LineError{
		{Line: 3, RecordID: "e-2", Field: "quantity", Reason: "must not be negative"},
		{Line: 3, RecordID: "e-2", Field: "time", Reason: "required"},
		{Line: 7, Field: "", Reason: "malformed JSON"},
	}
	// Written twice, as by a run resumed after a crash.
	for range 2 {
		if err := s.AddErrors(ctx, ten, j.ID, rows); err != nil {
			t.Fatal(err)
		}
	}
	var got []LineError
	if err := s.Errors(ctx, ten, j.ID, 0, func(e LineError) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(rows) {
		t.Errorf("report %v, want %v", got, rows)
	}
	got = nil
	_ = s.Errors(ctx, newTenant("x"), j.ID, 0, func(e LineError) error { got = append(got, e); return nil })
	if len(got) != 0 {
		t.Error("another tenant read the report")
	}
}
