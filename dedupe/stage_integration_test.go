package dedupe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// newStage returns a dedupe stage over the shared Redis that writes to the
// shared broker through a real producer.
func newStage(t *testing.T) *Stage {
	t.Helper()
	w := stream.NewWriter(env.brokers, "")
	t.Cleanup(func() { w.Close() })
	return NewStage(NewClaimStore(env.rdb), w, stream.NewMetrics(prometheus.NewRegistry()), Options{Windows: FixedWindow(time.Hour)})
}

// baseTime is near now: claims far older than their retention would be
// purged by the next write to their bucket.
var baseTime = clock.Now().UTC().Truncate(time.Minute)

func event(tenant, id, qty string) schemas.UsageEvent {
	return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "cust-1", Element: "api_calls",
		Quantity: decimal.RequireFromString(qty), Time: baseTime, Attributes: map[string]string{"region": "jp"},
		ReceivedAt: baseTime.Add(1500 * time.Millisecond)}
}

// raw is a usage.raw record at partition p, offset o, with the headers ingest
// sets. Its JSON is indented, so a stage that re-encoded it would not pass
// it on byte for byte.
func raw(t *testing.T, p int, o int64, e schemas.UsageEvent) kafka.Message {
	t.Helper()
	v, err := json.MarshalIndent(&e, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: schemas.TopicRaw, Partition: p, Offset: o, Key: e.PartitionKey(), Value: v, Time: e.ReceivedAt,
		Headers: schemas.RawHeaders(&e)}
}

func rawBytes(p int, o int64, value string) kafka.Message {
	return kafka.Message{Topic: schemas.TopicRaw, Partition: p, Offset: o, Key: []byte("k"), Value: []byte(value),
		Time: baseTime}
}

// dupWant is an expected usage.duplicates record.
type dupWant struct {
	self    kafka.Message // the duplicate's own raw record
	first   kafka.Message // the raw record that claimed the id
	differs bool
}

// HandleBatch end to end, Redis and Kafka real: each step hands one batch
// and checks everything the stage wrote. The records carry ingest's headers,
// which the stage claims them by, or (as records written before ingest set
// them) none, so that the stage decodes them.
func TestStageHandleBatch(t *testing.T) {
	needServers(t)
	for _, headers := range []bool{true, false} {
		t.Run(fmt.Sprintf("headers=%v", headers), func(t *testing.T) {
			raw := func(t *testing.T, p int, o int64, e schemas.UsageEvent) kafka.Message {
				m := raw(t, p, o, e)
				if !headers {
					m.Headers = nil
				}
				return m
			}
			testStageHandleBatch(t, raw)
		})
	}
}

func testStageHandleBatch(t *testing.T, raw func(*testing.T, int, int64, schemas.UsageEvent) kafka.Message) {
	stage := newStage(t)
	tenant := newTenant("stage")
	other := newTenant("stage-other")

	a := raw(t, 0, 100, event(tenant, "e-a", "1"))
	b := raw(t, 1, 200, event(tenant, "e-b", "2.5"))
	bOther := raw(t, 2, 201, event(other, "e-b", "2.5")) // same id, other tenant
	notJSON := rawBytes(2, 300, `{"tenant": "t", "id": `)
	noTenant := rawBytes(2, 301, `{"id":"e-x","customer":"c","element":"e","quantity":"1"}`)
	aAgain := raw(t, 2, 400, event(tenant, "e-a", "1"))  // same payload
	aLater := event(tenant, "e-a", "1.0")                // same value, other scale,
	aLater.ReceivedAt = aLater.ReceivedAt.Add(time.Hour) // received later: same payload
	aSamePayload := raw(t, 1, 401, aLater)
	aChanged := raw(t, 0, 402, event(tenant, "e-a", "2")) // quantity differs
	c := raw(t, 0, 500, event(tenant, "e-c", "3"))
	cDup := raw(t, 1, 501, event(tenant, "e-c", "3"))
	cDupChanged := raw(t, 2, 502, event(tenant, "e-c", "4"))

	steps := []struct {
		name       string
		batch      []kafka.Message
		accepted   []kafka.Message // raw records expected byte-identical on usage.accepted
		duplicates []dupWant
		malformed  []kafka.Message // raw records expected on usage.unrated
	}{
		{name: "first seen records are accepted, unreadable ones parked as malformed",
			batch:     []kafka.Message{a, notJSON, b, bOther, noTenant},
			accepted:  []kafka.Message{a, b, bOther},
			malformed: []kafka.Message{notJSON, noTenant}},
		{name: "the same batch redelivered is accepted again, never flagged as its own duplicate",
			batch:     []kafka.Message{a, notJSON, b, bOther, noTenant},
			accepted:  []kafka.Message{a, b, bOther},
			malformed: []kafka.Message{notJSON, noTenant}},
		{name: "repeats of an accepted record are duplicates pointing at it",
			batch: []kafka.Message{aAgain, aSamePayload, aChanged},
			duplicates: []dupWant{
				{self: aAgain, first: a, differs: false},
				{self: aSamePayload, first: a, differs: false},
				{self: aChanged, first: a, differs: true},
			}},
		{name: "repeats redelivered stay duplicates",
			batch: []kafka.Message{aChanged, aAgain},
			duplicates: []dupWant{
				{self: aChanged, first: a, differs: true},
				{self: aAgain, first: a, differs: false},
			}},
		{name: "repeats inside one batch: the first in the batch wins",
			batch:    []kafka.Message{c, cDup, a, cDupChanged},
			accepted: []kafka.Message{c, a},
			duplicates: []dupWant{
				{self: cDup, first: c, differs: false},
				{self: cDupChanged, first: c, differs: true},
			}},
	}
	for _, st := range steps {
		before := endOffsets(t)
		if err := stage.HandleBatch(context.Background(), st.batch); err != nil {
			t.Fatalf("%s: HandleBatch: %v", st.name, err)
		}
		out := readSince(t, before)
		checkAccepted(t, st.name, out[schemas.TopicAccepted], st.accepted)
		checkDuplicates(t, st.name, out[schemas.TopicDuplicates], st.duplicates)
		checkMalformed(t, st.name, out[schemas.TopicUnrated], st.malformed)
		if n := len(out[schemas.TopicRated]); n != 0 {
			t.Errorf("%s: %d records on %s, want none", st.name, n, schemas.TopicRated)
		}
	}
}

// checkAccepted checks that got holds exactly the want records, byte for
// byte, with their keys and times.
func checkAccepted(t *testing.T, step string, got, want []kafka.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records on usage.accepted, want %d: %s", step, len(got), len(want), values(got))
		return
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if bytes.Equal(g.Value, w.Value) {
				found = true
				if !bytes.Equal(g.Key, w.Key) {
					t.Errorf("%s: accepted record key %q, want %q", step, g.Key, w.Key)
				}
				if !g.Time.Equal(w.Time) {
					t.Errorf("%s: accepted record time %v, want the raw record's %v", step, g.Time, w.Time)
				}
				// The rater recognises every copy of a record by it.
				if p, o, ok, err := schemas.ParseRawPosition(g.Headers); !ok || err != nil || p != w.Partition || o != w.Offset {
					t.Errorf("%s: accepted record names raw position %d/%d (found %v, %v), want %d/%d", step, p, o, ok, err, w.Partition, w.Offset)
				}
			}
		}
		if !found {
			t.Errorf("%s: raw record %d/%d not on usage.accepted byte for byte: %s", step, w.Partition, w.Offset, w.Value)
		}
	}
}

func checkDuplicates(t *testing.T, step string, got []kafka.Message, want []dupWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records on usage.duplicates, want %d: %s", step, len(got), len(want), values(got))
		return
	}
	seen := map[string]bool{}
	for _, g := range got {
		var d schemas.Duplicate
		if err := json.Unmarshal(g.Value, &d); err != nil {
			t.Errorf("%s: duplicate does not decode: %v: %s", step, err, g.Value)
			continue
		}
		var w *dupWant
		for i := range want {
			if want[i].self.Partition == d.Self.Partition && want[i].self.Offset == d.Self.Offset {
				w = &want[i]
			}
		}
		if w == nil {
			t.Errorf("%s: unexpected duplicate %s", step, g.Value)
			continue
		}
		key := fmt.Sprintf("%d/%d", d.Self.Partition, d.Self.Offset)
		if seen[key] {
			t.Errorf("%s: duplicate of %s written twice", step, key)
		}
		seen[key] = true
		var self, first schemas.UsageEvent
		mustDecode(t, w.self.Value, &self)
		mustDecode(t, w.first.Value, &first)
		wantFirst := schemas.Claim{Partition: w.first.Partition, Offset: w.first.Offset,
			PayloadHash: Fingerprint(&first), ReceivedAt: first.ReceivedAt.Truncate(time.Second)}
		if !sameClaim(d.First, wantFirst) {
			t.Errorf("%s: duplicate %s: first %+v, want %+v", step, key, d.First, wantFirst)
		}
		if d.Self.PayloadHash != Fingerprint(&self) || !d.Self.ReceivedAt.Equal(self.ReceivedAt) {
			t.Errorf("%s: duplicate %s: self %+v does not describe its record", step, key, d.Self)
		}
		if d.PayloadDiffers != w.differs {
			t.Errorf("%s: duplicate %s: payload_differs %v, want %v", step, key, d.PayloadDiffers, w.differs)
		}
		if d.Event.Tenant != self.Tenant || d.Event.ID != self.ID || !d.Event.Quantity.Equal(self.Quantity) ||
			!d.Event.ReceivedAt.Equal(self.ReceivedAt) {
			t.Errorf("%s: duplicate %s carries event %+v, want %+v", step, key, d.Event, self)
		}
		if d.DetectedAt.IsZero() {
			t.Errorf("%s: duplicate %s has no detected_at", step, key)
		}
		if !bytes.Equal(g.Key, w.self.Key) {
			t.Errorf("%s: duplicate %s key %q, want %q", step, key, g.Key, w.self.Key)
		}
	}
}

func checkMalformed(t *testing.T, step string, got, want []kafka.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records on usage.unrated, want %d: %s", step, len(got), len(want), values(got))
		return
	}
	for _, w := range want {
		id := fmt.Sprintf("raw:%d:%d", w.Partition, w.Offset)
		found := false
		for _, g := range got {
			var u schemas.Unrated
			mustDecode(t, g.Value, &u)
			if u.Event.ID != id {
				continue
			}
			found = true
			if u.ReasonCode != schemas.ReasonMalformed || u.Stage != StageName || u.Raw != string(w.Value) ||
				!strings.HasPrefix(u.Reason, "record is not a usage event") || u.At.IsZero() {
				t.Errorf("%s: unrated %s = %+v; want reason %s, stage %s, raw %q", step, id, u,
					schemas.ReasonMalformed, StageName, w.Value)
			}
		}
		if !found {
			t.Errorf("%s: no usage.unrated record %s among %s", step, id, values(got))
		}
	}
}

// mustDecode decodes an output: a parked record in the binary encoding
// (schemas.MarshalUnrated), anything else as JSON.
func mustDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	var err error
	if u, ok := v.(*schemas.Unrated); ok {
		err = schemas.UnmarshalUnrated(b, u)
	} else {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func values(ms []kafka.Message) string {
	var s []string
	for _, m := range ms {
		s = append(s, string(m.Value))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// With Redis down HandleBatch fails and writes nothing, so the batch is not
// committed, and the metrics say the stage is blocked and since when; once
// Redis is back the same batch goes through and the metrics clear. On a
// cluster, the master holding one of the batch's claims is the one down.
func TestStageRedisDown(t *testing.T) { eachRedis(t, testStageRedisDown) }

func testStageRedisDown(t *testing.T, rdb redis.UniversalClient) {
	w := stream.NewWriter(env.brokers, "")
	t.Cleanup(func() { w.Close() })
	stage := NewStage(NewClaimStore(rdb), w, stream.NewMetrics(prometheus.NewRegistry()), Options{Windows: FixedWindow(time.Hour)})
	stage.now = func() time.Time { return time.Unix(1_800_000_000, 0) }
	tenant := newTenant("stage-redis-down")
	batch := []kafka.Message{
		raw(t, 0, 10, event(tenant, "r1", "1")),
		raw(t, 1, 11, event(tenant, "r2", "2")),
		raw(t, 2, 12, event(tenant, "r1", "1")), // duplicate of r1
		rawBytes(0, 13, "garbage"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	server := env.redis
	if _, ok := rdb.(*redis.ClusterClient); ok {
		addr := nodeFor(t, rdb, locate(tenant, "r1").key).(*redis.Client).Options().Addr
		for _, n := range env.cluster.Nodes {
			if n.Addr == addr {
				server = n
			}
		}
		if server == env.redis {
			t.Fatalf("no cluster node at %s", addr)
		}
	}
	before := endOffsets(t)
	if err := server.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = server.Restart(context.Background())
		}
	}()
	for attempt := 1; attempt <= 2; attempt++ {
		if err := stage.HandleBatch(ctx, batch); err == nil {
			t.Error("HandleBatch with Redis down returned nil, want an error")
		}
		if i := stage.now().Unix(); attempt == 1 {
			stage.now = func() time.Time { return time.Unix(i+60, 0) } // the outage goes on
		}
		up, since := testutil.ToFloat64(stage.health.up), testutil.ToFloat64(stage.health.blockedSince)
		failed := testutil.ToFloat64(stage.metrics.Errors.WithLabelValues(StageName, "redis"))
		if up != 0 || since != 1_800_000_000 || failed != float64(attempt) {
			t.Errorf("attempt %d with Redis down: redis_up %v, blocked_since %v, redis errors %v; want 0, the first failure (1800000000), %d",
				attempt, up, since, failed, attempt)
		}
	}
	if out := readSince(t, before); len(out) != 0 {
		t.Errorf("HandleBatch with Redis down wrote %d accepted, %d duplicates, %d unrated records; want none",
			len(out[schemas.TopicAccepted]), len(out[schemas.TopicDuplicates]), len(out[schemas.TopicUnrated]))
	}
	if err := server.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// As the consumer does, retry until Redis serves again (a cluster node
	// rejoins its cluster a moment after it answers PING).
	for {
		err := stage.HandleBatch(ctx, batch)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("HandleBatch after Redis restarted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if up, since := testutil.ToFloat64(stage.health.up), testutil.ToFloat64(stage.health.blockedSince); up != 1 || since != 0 {
		t.Errorf("after Redis came back: redis_up %v, blocked_since %v; want 1 and 0", up, since)
	}
	out := readSince(t, before)
	checkAccepted(t, "after restart", out[schemas.TopicAccepted], batch[:2])
	checkDuplicates(t, "after restart", out[schemas.TopicDuplicates], []dupWant{{self: batch[2], first: batch[0]}})
	checkMalformed(t, "after restart", out[schemas.TopicUnrated], batch[3:])
}

// When the claims are made but the outputs cannot be written, HandleBatch
// fails; the redelivered batch then finds its own claims and is accepted,
// not flagged as duplicates of itself.
func TestStageRedeliveryAfterFailedWrite(t *testing.T) {
	needServers(t)
	tenant := newTenant("stage-write-fails")
	batch := []kafka.Message{
		raw(t, 0, 70, event(tenant, "w1", "1")),
		raw(t, 1, 71, event(tenant, "w2", "2")),
	}
	// A real producer whose broker is gone.
	dead := stream.NewWriter([]string{"127.0.0.1:1"}, "")
	dead.MaxAttempts, dead.WriteTimeout = 1, time.Second
	defer dead.Close()
	broken := NewStage(NewClaimStore(env.rdb), dead, stream.NewMetrics(prometheus.NewRegistry()), Options{Windows: FixedWindow(time.Hour)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := broken.HandleBatch(ctx, batch); err == nil {
		t.Fatal("HandleBatch with an unreachable broker returned nil, want an error")
	}
	for _, id := range []string{"w1", "w2"} {
		loc := locate(tenant, id)
		if ok, err := env.rdb.HExists(ctx, loc.key, loc.field).Result(); err != nil || !ok {
			t.Fatalf("claim of %s after the failed write: exists=%v, %v; want it made", id, ok, err)
		}
	}
	before := endOffsets(t)
	if err := newStage(t).HandleBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	out := readSince(t, before)
	checkAccepted(t, "redelivery", out[schemas.TopicAccepted], batch)
	checkDuplicates(t, "redelivery", out[schemas.TopicDuplicates], nil)
}

// Dedupe handling a batch again that it had passed on (after a rebalance,
// or a crash between its write and its commit) passes its records on again,
// at new offsets, with the same usage.raw positions as the first time: the
// position every copy of a record shares. Records it could not decode
// carry none (they go to usage.unrated).
func TestStageRehandledBatchKeepsRawPositions(t *testing.T) {
	needServers(t)
	tenant := newTenant("stage-rehandled")
	batch := []kafka.Message{
		raw(t, 2, 500, event(tenant, "r1", "1")),
		raw(t, 2, 501, event(tenant, "r2", "2")),
		raw(t, 2, 502, event(tenant, "r1", "1")), // a duplicate of r1: no copy on usage.accepted
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	positions := func(msgs []kafka.Message) []string {
		var out []string
		for _, m := range msgs {
			p, o, ok, err := schemas.ParseRawPosition(m.Headers)
			if !ok || err != nil {
				t.Fatalf("accepted record without a raw position: %v %v %s", ok, err, m.Value)
			}
			out = append(out, fmt.Sprintf("%d/%d", p, o))
		}
		return out
	}
	var got [][]string
	for range 2 {
		before := endOffsets(t)
		if err := newStage(t).HandleBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		out := readSince(t, before)
		checkAccepted(t, "rehandled", out[schemas.TopicAccepted], batch[:2])
		got = append(got, positions(out[schemas.TopicAccepted]))
	}
	if strings.Join(got[0], ",") != "2/500,2/501" || strings.Join(got[1], ",") != strings.Join(got[0], ",") {
		t.Fatalf("raw positions first %v, again %v; want 2/500,2/501 both times", got[0], got[1])
	}
}

// windowsMap is a fixed set of tenant windows; nil means not loaded yet.
type windowsMap map[string]time.Duration

func (w windowsMap) Window(tenant string) (time.Duration, bool) {
	if w == nil {
		return 0, false
	}
	d, ok := w[tenant]
	if !ok {
		d = DefaultWindow
	}
	return d, true
}

// A claim lasts the tenant's window plus the future skew, counted from the
// first record's receive time: a repeat received one second inside is a
// duplicate; one received a second later finds the claim expired and is
// accepted as a first record. Another tenant's window is its own.
func TestStageTenantWindow(t *testing.T) {
	needServers(t)
	tenant, other := newTenant("stage-window"), newTenant("stage-window-other")
	const window, skew = 2 * time.Hour, 30 * time.Minute
	w := stream.NewWriter(env.brokers, "")
	defer w.Close()
	stage := NewStage(NewClaimStore(env.rdb), w, stream.NewMetrics(prometheus.NewRegistry()),
		Options{Windows: windowsMap{tenant: window, other: 10 * window}, FutureSkew: skew})
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	at := func(tn string, p int, o int64, d time.Duration) kafka.Message {
		e := event(tn, "x", "1")
		e.ReceivedAt = t0.Add(d)
		return raw(t, p, o, e)
	}
	ctx := context.Background()
	first, inside, expired, after := at(tenant, 0, 1, 0), at(tenant, 1, 2, window+skew), at(tenant, 2, 3, window+skew+time.Second),
		at(tenant, 0, 4, window+skew+2*time.Second)
	otherFirst, otherInside := at(other, 0, 5, 0), at(other, 1, 6, window+skew+time.Second)
	steps := []struct {
		name       string
		batch      []kafka.Message
		accepted   []kafka.Message
		duplicates []dupWant
	}{
		{"first records", []kafka.Message{first, otherFirst}, []kafka.Message{first, otherFirst}, nil},
		{"a repeat at the end of the window is a duplicate", []kafka.Message{inside}, nil,
			[]dupWant{{self: inside, first: first}}},
		{"a repeat a second later is not: the claim expired", []kafka.Message{expired}, []kafka.Message{expired}, nil},
		{"later repeats are duplicates of the new claim", []kafka.Message{after}, nil,
			[]dupWant{{self: after, first: expired}}},
		{"the other tenant's longer window still holds", []kafka.Message{otherInside}, nil,
			[]dupWant{{self: otherInside, first: otherFirst}}},
	}
	for _, st := range steps {
		before := endOffsets(t)
		if err := stage.HandleBatch(ctx, st.batch); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		out := readSince(t, before)
		checkAccepted(t, st.name, out[schemas.TopicAccepted], st.accepted)
		checkDuplicates(t, st.name, out[schemas.TopicDuplicates], st.duplicates)
	}
}

// Until the tenant windows are loaded the stage claims and writes nothing:
// the batch fails and is retried.
func TestStageWindowsNotLoaded(t *testing.T) {
	needServers(t)
	tenant := newTenant("stage-no-windows")
	w := stream.NewWriter(env.brokers, "")
	defer w.Close()
	m := stream.NewMetrics(prometheus.NewRegistry())
	stage := NewStage(NewClaimStore(env.rdb), w, m, Options{Windows: windowsMap(nil)})
	before := endOffsets(t)
	batch := []kafka.Message{raw(t, 0, 1, event(tenant, "n1", "1"))}
	if err := stage.HandleBatch(context.Background(), batch); err == nil {
		t.Fatal("HandleBatch without tenant windows returned nil")
	}
	if out := readSince(t, before); len(out) != 0 {
		t.Errorf("wrote %d topics of records without windows", len(out))
	}
	loc := locate(tenant, "n1")
	if n, _ := env.rdb.Exists(context.Background(), loc.key).Result(); n != 0 {
		t.Error("claimed without windows")
	}
	if n := testutil.ToFloat64(m.Errors.WithLabelValues(StageName, "windows")); n != 1 {
		t.Errorf("errors{kind=windows} = %v, want 1", n)
	}
}

// A record whose headers claim an id but whose body is not an event is
// accepted while it holds the claim (the rater parks it), and parked as
// malformed as a repeat, where its event would be needed.
func TestStageHeadersWithoutEvent(t *testing.T) {
	needServers(t)
	stage := newStage(t)
	tenant := newTenant("stage-headers")
	first := raw(t, 0, 1, event(tenant, "h1", "1"))
	broken := rawBytes(1, 2, "not an event")
	broken.Headers = first.Headers
	before := endOffsets(t)
	if err := stage.HandleBatch(context.Background(), []kafka.Message{first, broken}); err != nil {
		t.Fatal(err)
	}
	out := readSince(t, before)
	checkAccepted(t, "headers without event", out[schemas.TopicAccepted], []kafka.Message{first})
	checkMalformed(t, "headers without event", out[schemas.TopicUnrated], []kafka.Message{broken})
	checkDuplicates(t, "headers without event", out[schemas.TopicDuplicates], nil)
}

// A record whose claim cannot be packed (a receive time before 1970) is
// parked as malformed instead of blocking the stage; a record without a
// receive time is claimed with its Kafka timestamp (the same ingest time).
func TestStageUnclaimableRecord(t *testing.T) {
	needServers(t)
	stage := newStage(t)
	tenant := newTenant("stage-unclaimable")
	bad := event(tenant, "u1", "1")
	bad.ReceivedAt = time.Unix(-10, 0).UTC()
	noTime := event(tenant, "u2", "1")
	noTime.ReceivedAt = time.Time{}
	badMsg, noTimeMsg := raw(t, 0, 1, bad), raw(t, 1, 2, noTime)
	noTimeMsg.Time = baseTime
	before := endOffsets(t)
	if err := stage.HandleBatch(context.Background(), []kafka.Message{badMsg, noTimeMsg}); err != nil {
		t.Fatal(err)
	}
	out := readSince(t, before)
	checkMalformed(t, "unclaimable", out[schemas.TopicUnrated], []kafka.Message{badMsg})
	checkAccepted(t, "no receive time", out[schemas.TopicAccepted], []kafka.Message{noTimeMsg})
	got, err := stage.claims.Claim(context.Background(), []ClaimRequest{{Tenant: tenant, ID: "u2", Retention: time.Hour,
		Claim: schemas.Claim{Partition: 2, Offset: 3, ReceivedAt: baseTime}}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Offset != 2 || !got[0].ReceivedAt.Equal(baseTime) {
		t.Errorf("claim of the record without receive time: %+v, want offset 2 received %v", got[0], baseTime)
	}
}
