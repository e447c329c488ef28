package run

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
)

// StageGroup is one pipeline stage's consumer group and the topics of it
// that a billing run waits for.
type StageGroup struct {
	Group  string
	Topics []string
}

// PipelineSteps are the stages a run waits for, in the order records flow:
// dedupe on usage.raw; then the rater on usage.accepted; then the aggregator
// on what dedupe and the rater produced (rated lines, duplicates, unrated,
// statuses; the rater's first output of each record also carries the record
// itself for usage_records, so the aggregator does not read usage.accepted).
// Each step's end offsets are pinned once the step before reached its own,
// so what a stage wrote for a record received before the run's start is
// behind the next step's pin.
var PipelineSteps = [][]StageGroup{
	{{Group: "kakin-dedupe", Topics: []string{schemas.TopicRaw}}},
	{{Group: "kakin-rater", Topics: []string{schemas.TopicAccepted}}},
	{{Group: "kakin-aggregator", Topics: []string{schemas.TopicRated, schemas.TopicDuplicates, schemas.TopicUnrated, schemas.TopicStatus}}},
}

// Pin is one partition's end offset a stage's committed offset had to reach
// before a run computed (stored with the run).
type Pin = billingdb.Pin

// ErrLagging answers a run whose stages did not reach its watermark in time.
var ErrLagging = errors.New("the pipeline did not reach the run's watermark")

// Watermark waits until the pipeline's stages have committed everything
// that was in their topics when a run started.
type Watermark struct {
	Client  *kafka.Client
	Steps   [][]StageGroup // default PipelineSteps
	Timeout time.Duration  // the whole wait; default 10 minutes
	Poll    time.Duration  // between two looks at the committed offsets; default 500 ms

	onBehind func([]string) // tests: what each look found behind
}

// Wait pins, step by step, the end offsets of each step's topics and polls
// the step's groups' committed offsets until every partition reached its
// pin. It returns every pin. When Timeout passes first, the error wraps
// ErrLagging and names each group, topic and partition still behind, with
// how far.
func (w *Watermark) Wait(ctx context.Context) ([]Pin, error) {
	steps, timeout, poll := w.Steps, w.Timeout, w.Poll
	if steps == nil {
		steps = PipelineSteps
	}
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	var all []Pin
	for _, step := range steps {
		var pins []Pin
		for _, g := range step {
			// A broker that does not answer is asked again until the
			// deadline, like the committed offsets below.
			for {
				ends, err := w.ends(ctx, g.Topics)
				if err == nil {
					for _, e := range ends {
						e.Group = g.Group
						pins = append(pins, e)
					}
					break
				}
				if ctx.Err() != nil {
					return nil, fmt.Errorf("wait for the pipeline: %w", ctx.Err())
				}
				if time.Now().After(deadline) {
					return nil, fmt.Errorf("%w within %s: pinning the end offsets of %s: %w", ErrLagging, timeout, strings.Join(g.Topics, ", "), err)
				}
				select {
				case <-ctx.Done():
					return nil, fmt.Errorf("wait for the pipeline: %w", ctx.Err())
				case <-time.After(poll):
				}
			}
		}
		for {
			behind, err := w.behind(ctx, pins)
			if err == nil && len(behind) == 0 {
				break
			}
			if w.onBehind != nil && err == nil {
				w.onBehind(behind)
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wait for the pipeline: %w", ctx.Err())
			}
			if time.Now().After(deadline) {
				if err != nil {
					return nil, fmt.Errorf("%w within %s: reading committed offsets: %w", ErrLagging, timeout, err)
				}
				return nil, fmt.Errorf("%w within %s: %s", ErrLagging, timeout, strings.Join(behind, "; "))
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for the pipeline: %w", ctx.Err())
			case <-time.After(poll):
			}
		}
		all = append(all, pins...)
	}
	return all, nil
}

// ends returns the end offset (the next offset to be written) of every
// partition of topics.
func (w *Watermark) ends(ctx context.Context, topics []string) ([]Pin, error) {
	meta, err := w.Client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, err
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	res, err := w.Client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, err
	}
	var out []Pin
	for topic, parts := range res.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error)
			}
			if p.LastOffset <= max(p.FirstOffset, 0) {
				continue // no record in the partition: nothing to wait for
			}
			out = append(out, Pin{Topic: topic, Partition: p.Partition, Offset: p.LastOffset})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// behind returns the pins whose group has not committed up to them, as
// "group topic/partition committed N of M".
func (w *Watermark) behind(ctx context.Context, pins []Pin) ([]string, error) {
	byGroup := map[string]map[string][]int{}
	var groups []string
	for _, p := range pins {
		if byGroup[p.Group] == nil {
			byGroup[p.Group] = map[string][]int{}
			groups = append(groups, p.Group)
		}
		byGroup[p.Group][p.Topic] = append(byGroup[p.Group][p.Topic], p.Partition)
	}
	committed := map[Pin]int64{} // (group, topic, partition) → committed offset
	for _, g := range groups {
		res, err := w.Client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g, Topics: byGroup[g]})
		if err != nil {
			return nil, fmt.Errorf("committed offsets of %s: %w", g, err)
		}
		if res.Error != nil && !errors.Is(res.Error, kafka.GroupIdNotFound) {
			return nil, fmt.Errorf("committed offsets of %s: %w", g, res.Error)
		}
		for topic, parts := range res.Topics {
			for _, p := range parts {
				if p.Error == nil {
					committed[Pin{Group: g, Topic: topic, Partition: p.Partition}] = p.CommittedOffset
				}
			}
		}
	}
	var out []string
	for _, p := range pins {
		c, ok := committed[Pin{Group: p.Group, Topic: p.Topic, Partition: p.Partition}]
		if !ok || c < p.Offset {
			if !ok || c < 0 {
				c = 0
			}
			out = append(out, fmt.Sprintf("group %s is behind on %s partition %d (committed %d, needs %d)", p.Group, p.Topic, p.Partition, c, p.Offset))
		}
	}
	return out, nil
}

// WaitForPipeline waits for the service's Watermark, if any, and returns
// the offsets waited for (a billing job and a close wait by themselves; a
// caller of Run directly waits first).
func (s *Service) WaitForPipeline(ctx context.Context) ([]Pin, error) { return s.waitStages(ctx) }

// waitStages waits for the service's Watermark, if any.
func (s *Service) waitStages(ctx context.Context) ([]Pin, error) {
	if s.o.Watermark == nil {
		return nil, nil
	}
	start := time.Now()
	pins, err := s.o.Watermark.Wait(ctx)
	if err != nil {
		return nil, err
	}
	s.o.Log.Info("billing: the pipeline reached the watermark", "partitions", len(pins), "waited", time.Since(start).Round(time.Millisecond).String())
	return pins, nil
}
