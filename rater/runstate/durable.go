package runstate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Durability is what the state's Redis says about its persistence.
type Durability struct {
	AppendOnly  string // CONFIG GET appendonly
	AppendFsync string // CONFIG GET appendfsync
}

// Durable reports whether an acknowledged save survives a SIGKILL and a
// power loss: an append-only file fsynced before Redis answers. With
// appendfsync everysec Redis may hold back the AOF write while an fsync is
// slow and lose the last seconds of acknowledged saves; a lost save makes
// the rater price later records of that customer-period from a running total
// that misses records it has already committed (docs/ARCHITECTURE.md "If
// Redis loses its data").
func (d Durability) Durable() bool {
	return strings.EqualFold(d.AppendOnly, "yes") && strings.EqualFold(d.AppendFsync, "always")
}

// CheckDurability asks rdb for its persistence settings (CONFIG GET). A Redis
// that refuses CONFIG (some managed services) answers an error: the caller
// cannot tell, and says so.
func CheckDurability(ctx context.Context, rdb redis.UniversalClient) (Durability, error) {
	var d Durability
	for _, p := range []struct {
		name string
		into *string
	}{{"appendonly", &d.AppendOnly}, {"appendfsync", &d.AppendFsync}} {
		m, err := rdb.ConfigGet(ctx, p.name).Result()
		if err != nil {
			return d, fmt.Errorf("running state: CONFIG GET %s: %w", p.name, err)
		}
		*p.into = m[p.name]
	}
	return d, nil
}

// ReportDurability checks rdb once, sets the gauge kakin_rater_state_durable
// (1 durable, 0 not or unknown) on reg and logs a warning when the running
// state's saves may be lost by a crash. It never fails the caller: a Redis
// that is down now is the stage's readiness, not this check's.
func ReportDurability(ctx context.Context, rdb redis.UniversalClient, reg prometheus.Registerer, log *slog.Logger) Durability {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kakin_rater_state_durable",
		Help: "1 when the Redis holding the rater's running state fsyncs its append-only file before answering (appendonly yes, appendfsync always); 0 when it does not or cannot tell.",
	})
	if reg != nil {
		if err := reg.Register(g); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				g = are.ExistingCollector.(prometheus.Gauge)
			}
		}
	}
	d, err := CheckDurability(ctx, rdb)
	switch {
	case err != nil:
		g.Set(0)
		log.Warn("running state: cannot tell whether Redis keeps acknowledged saves across a crash; run it with appendonly yes and appendfsync always", "err", err)
	case !d.Durable():
		g.Set(0)
		log.Warn("running state: Redis may lose acknowledged saves in a crash, and a lost save misprices later records of that customer-period; set appendonly yes and appendfsync always",
			"appendonly", d.AppendOnly, "appendfsync", d.AppendFsync)
	default:
		g.Set(1)
	}
	return d
}
