package runstate

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/deploy/devstack"
	"github.com/redis/go-redis/v9"
)

var rdb *redis.Client

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, stop, err := devstack.StartForTests(ctx, "runstate", devstack.Want{Redis: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	rdb = redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	defer rdb.Close()
	return m.Run()
}

func TestLoadSaveApplied(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	s := New(rdb, time.Hour)
	keys := []Key{{"t-a", "cust-1/fee/2026-05"}, {"t-a", "cust-2/fee/2026-05"}, {"t-b", "cust-1/fee/2026-05"}}
	got, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if e.Offset != -1 || e.Data != nil || e.Applied(0, 0) {
			t.Fatalf("entry %d of an empty store = %+v, want nothing applied", i, e)
		}
	}
	save := []Entry{{Partition: 2, Offset: 41, Data: []byte("a")}, {Partition: 300, Offset: 1 << 40, Data: []byte{0, 1, 2}}}
	if err := s.Save(ctx, keys[:2], save); err != nil {
		t.Fatal(err)
	}
	got, err = s.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range save {
		if got[i].Partition != save[i].Partition || got[i].Offset != save[i].Offset || !bytes.Equal(got[i].Data, save[i].Data) {
			t.Fatalf("entry %d = %+v, want %+v", i, got[i], save[i])
		}
	}
	// The same state key of another tenant is another entry.
	if got[2].Offset != -1 {
		t.Fatalf("tenant t-b sees t-a's state: %+v", got[2])
	}
	tests := []struct {
		partition int
		offset    int64
		want      bool
	}{{2, 40, true}, {2, 41, true}, {2, 42, false}, {1, 41, false}}
	for _, tt := range tests {
		if a := got[0].Applied(tt.partition, tt.offset); a != tt.want {
			t.Errorf("Applied(%d, %d) = %v, want %v", tt.partition, tt.offset, a, tt.want)
		}
	}
	if ttl := rdb.TTL(ctx, keys[0].redisKey()).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("ttl = %v, want at most an hour", ttl)
	}
}

// A save that fails part-way leaves every entry as it was.
func TestSaveIsAllOrNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	s := New(rdb, time.Hour)
	keys := []Key{{"t-c", "x"}, {"t-c", "y"}}
	if err := s.Save(ctx, keys, []Entry{{Offset: 1, Data: []byte("old")}, {Offset: 1, Data: []byte("old")}}); err != nil {
		t.Fatal(err)
	}
	err := s.Save(ctx, keys, []Entry{{Offset: 2, Data: []byte("new")}, {Offset: -5, Data: []byte("bad")}})
	if err == nil {
		t.Fatal("a save with a bad position succeeded")
	}
	got, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if string(e.Data) != "old" || e.Offset != 1 {
			t.Fatalf("entry %d = %+v after a failed save, want the old one", i, e)
		}
	}
}
