package runstate

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

var rdb *redis.Client

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.Want{Redis: true}, func(context.Context) error {
		rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
		testenv.AtExit(func() { rdb.Close() })
		return nil
	})
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

// Two writers load the same entries; the one that saves first wins and the
// late one is fenced: it writes nothing, not even the entries nobody else
// touched, and the newer state survives.
func TestSaveIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	s := New(rdb, time.Hour)
	keys := []Key{{"t-fence", "shared"}, {"t-fence", "only-late"}}
	early, err := s.Load(ctx, keys[:1])
	if err != nil {
		t.Fatal(err)
	}
	late, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if early[0].Version != 0 || late[0].Version != 0 {
		t.Fatalf("versions of new entries %d, %d, want 0", early[0].Version, late[0].Version)
	}
	early[0].Offset, early[0].RawPartition, early[0].RawOffset, early[0].Data = 12, 3, 102, []byte("110")
	if err := s.Save(ctx, keys[:1], early); err != nil {
		t.Fatal(err)
	}
	if early[0].Version != 1 {
		t.Fatalf("version after a save %d, want 1", early[0].Version)
	}
	late[0].Offset, late[0].RawPartition, late[0].RawOffset, late[0].Data = 11, 3, 101, []byte("90")
	late[1].Offset, late[1].Data = 11, []byte("x")
	err = s.Save(ctx, keys, late)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("late save: %v, want ErrFenced", err)
	}
	got, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Data) != "110" || got[0].Version != 1 || got[0].RawOffset != 102 || got[0].Offset != 12 {
		t.Fatalf("after the fenced save: %+v, want the early writer's entry at version 1", got[0])
	}
	if got[1].Version != 0 || got[1].Data != nil || got[1].Offset != -1 {
		t.Fatalf("the fenced save wrote the untouched entry: %+v", got[1])
	}
	// The late writer loads again and saves over the newer state.
	got[1].Data = []byte("y")
	if err := s.Save(ctx, keys, got); err != nil {
		t.Fatal(err)
	}
	if got[0].Version != 2 || got[1].Version != 1 {
		t.Fatalf("versions after the second save %d, %d, want 2, 1", got[0].Version, got[1].Version)
	}
	// An entry that expired (or was deleted) since it was loaded is fenced
	// too: version 0 is not the version loaded.
	if err := rdb.Del(ctx, keys[1].redisKey()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, keys[1:], got[1:]); !errors.Is(err, ErrFenced) {
		t.Fatalf("save over a vanished entry: %v, want ErrFenced", err)
	}
}

// Entries written before entries had versions and raw positions keep
// their state: they load as version 0 with no raw position, and saving
// over them is fenced like any other.
func TestReadsVersion1Entries(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	s := New(rdb, time.Hour)
	keys := []Key{{"t-v1", "old"}}
	v1 := binary.BigEndian.AppendUint16(nil, 7)
	v1 = binary.BigEndian.AppendUint64(v1, 1<<40)
	v1 = append(v1, "state"...)
	if err := rdb.Set(ctx, keys[0].redisKey(), v1, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Partition: 7, Offset: 1 << 40, RawOffset: -1, Data: []byte("state")}
	if e := got[0]; e.Partition != want.Partition || e.Offset != want.Offset || e.RawOffset != -1 || e.Version != 0 || string(e.Data) != "state" {
		t.Fatalf("version-1 entry loaded as %+v, want %+v", e, want)
	}
	stale := []Entry{got[0]}
	got[0].RawPartition, got[0].RawOffset, got[0].Data = 3, 5, []byte("new")
	if err := s.Save(ctx, keys, got); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, keys, stale); !errors.Is(err, ErrFenced) {
		t.Fatalf("second save from version 0: %v, want ErrFenced", err)
	}
	again, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if e := again[0]; e.Version != 1 || e.Partition != 7 || e.Offset != 1<<40 || e.RawPartition != 3 || e.RawOffset != 5 || string(e.Data) != "new" {
		t.Fatalf("after the upgrade save: %+v", e)
	}
}

func TestAppliedRaw(t *testing.T) {
	e := Entry{Partition: 1, Offset: 50, RawPartition: 3, RawOffset: 101}
	none := Entry{Partition: 1, Offset: 50, RawOffset: -1}
	tests := []struct {
		name      string
		e         Entry
		partition int
		offset    int64
		want      bool
	}{
		{"earlier record", e, 3, 100, true},
		{"the last one", e, 3, 101, true},
		{"a new record", e, 3, 102, false},
		{"another raw partition", e, 2, 100, false},
		{"no raw position yet", none, 0, 0, false},
	}
	for _, tt := range tests {
		if got := tt.e.AppliedRaw(tt.partition, tt.offset); got != tt.want {
			t.Errorf("%s: AppliedRaw(%d, %d) = %v, want %v", tt.name, tt.partition, tt.offset, got, tt.want)
		}
	}
}

func TestReportDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	ctx := context.Background()
	orig, err := CheckDurability(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	// The test servers run as production should (deploy/devstack).
	if !orig.Durable() {
		t.Fatalf("test Redis durability = %+v, want appendonly yes, appendfsync always", orig)
	}
	t.Cleanup(func() { rdb.ConfigSet(context.Background(), "appendfsync", orig.AppendFsync) })
	for _, tc := range []struct {
		fsync   string
		durable float64
		warns   bool
	}{
		{"everysec", 0, true},
		{"no", 0, true},
		{"always", 1, false},
	} {
		t.Run(tc.fsync, func(t *testing.T) {
			if err := rdb.ConfigSet(ctx, "appendfsync", tc.fsync).Err(); err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			var logs bytes.Buffer
			d := ReportDurability(ctx, rdb, reg, slog.New(slog.NewTextHandler(&logs, nil)))
			if d.AppendFsync != tc.fsync {
				t.Fatalf("appendfsync = %q, want %q", d.AppendFsync, tc.fsync)
			}
			if got := gaugeValue(t, reg, "kakin_rater_state_durable"); got != tc.durable {
				t.Fatalf("kakin_rater_state_durable = %v, want %v", got, tc.durable)
			}
			if warned := strings.Contains(logs.String(), "level=WARN"); warned != tc.warns {
				t.Fatalf("warned = %v, want %v; log: %s", warned, tc.warns, logs.String())
			}
		})
	}
	// A Redis that cannot be asked counts as not durable.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer down.Close()
	reg := prometheus.NewRegistry()
	ReportDurability(ctx, down, reg, slog.New(slog.DiscardHandler))
	if got := gaugeValue(t, reg, "kakin_rater_state_durable"); got != 0 {
		t.Fatalf("kakin_rater_state_durable with Redis down = %v, want 0", got)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}
