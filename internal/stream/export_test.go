package stream

import (
	"errors"
	"sync"

	"github.com/segmentio/kafka-go"
)

// FailCommitsOf makes the next n commits that carry a record of topic fail
// without reaching the broker, as if it had gone away; other topics' commits
// (parallel tests) pass. The returned func restores normal commits.
func FailCommitsOf(topic string, n int) (restore func()) {
	var mu sync.Mutex
	f := func(msgs []kafka.Message) error {
		for _, m := range msgs {
			if m.Topic != topic {
				continue
			}
			mu.Lock()
			defer mu.Unlock()
			if n > 0 {
				n--
				return errors.New("injected commit failure")
			}
			return nil
		}
		return nil
	}
	commitFault.Store(&f)
	return func() { commitFault.Store(nil) }
}
