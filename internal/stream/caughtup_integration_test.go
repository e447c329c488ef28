package stream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/segmentio/kafka-go"
)

// GroupCaughtUp waits for the end offsets of every partition of its topics
// as they were when the wait began: it times out while the group is behind
// on any of them (an empty partition or topic asks for nothing) and returns
// once the group has committed them, whatever is written after.
func TestGroupCaughtUp(t *testing.T) {
	needKafka(t)
	written, empty := newTopic(t, 3), newTopic(t, 2)
	end := produce(t, written, 5) // partitions 0 and 1 get 2, partition 2 gets 1
	group := uniqueName(t, "group")
	g := &stream.GroupCaughtUp{Client: client(), Group: group, Topics: []string{written, empty}}
	commit := func(offsets map[int]int64) {
		t.Helper()
		ps := map[string][]kafka.OffsetCommit{}
		for p, o := range offsets {
			ps[written] = append(ps[written], kafka.OffsetCommit{Partition: p, Offset: o})
		}
		res, err := client().OffsetCommit(context.Background(), &kafka.OffsetCommitRequest{GroupID: group,
			GenerationID: -1, Topics: ps})
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range res.Topics {
			for _, p := range ps {
				if p.Error != nil {
					t.Fatal(p.Error)
				}
			}
		}
	}
	wait := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		return g.WaitCaughtUp(ctx, 20*time.Millisecond)
	}
	for name, offsets := range map[string]map[int]int64{
		"nothing committed":       nil,
		"one partition behind":    {0: end[0], 1: end[1], 2: end[2] - 1},
		"one partition untouched": {0: end[0], 1: end[1]},
	} {
		if offsets != nil {
			commit(offsets)
		}
		if err := wait(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: wait returned %v, want a timeout", name, err)
		}
	}
	commit(end)
	produce(t, written, 3) // written after the wait began: not waited for
	if err := wait(); err == nil {
		t.Error("the wait after more records were written returned nil, want a timeout")
	}
	commit(endOffsets(t, written))
	if err := wait(); err != nil {
		t.Errorf("wait after the group caught up: %v", err)
	}
}
