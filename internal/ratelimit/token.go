package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/go-redis/redis_rate/v10"
	"github.com/kakin-dev/kakin/internal/auth"
)

// The budgets of the token endpoint (POST /oauth/token), checked before any
// client secret is hashed. They have no principal yet: TokenAddress counts
// attempts per remote address (auth.RemoteAddress), TokenClient per client
// id attempted, whether or not such a client exists.
const (
	TokenAddress Class = "token_address" // token requests per minute per remote address
	TokenClient  Class = "token_client"  // token requests per minute per client id attempted
)

var _ auth.AttemptLimiter = (*Limiter)(nil)

// tokenKey is the budget key of a token-endpoint class. The prefix "rl_token:"
// cannot be produced by Key (which always starts "rl:"), and the client id, a
// caller-chosen string of any length, is hashed, so every key is short and no
// input can reach into another key's space.
func tokenKey(class Class, v string) string {
	if class == TokenClient {
		sum := sha256.Sum256([]byte(v))
		v = hex.EncodeToString(sum[:16])
	}
	return "rl_token:" + string(class) + ":" + v
}

// AllowTokenAttempt implements auth.AttemptLimiter: one attempt of addr's
// budget (Defaults.TokenPerAddressPerMinute), then, only if that passed, one
// of clientID's (Defaults.TokenPerClientPerMinute), so an address that is
// already refused spends nothing of the budget of the client id it tries.
// Both are checked in Redis every time (never leased: a key per address must
// leave nothing behind in the process). Like every check it fails open when
// Redis does not answer within the check timeout — the endpoint is then
// bounded only by auth.Options.MaxConcurrentHashes — and counts that as
// kakin_ratelimit_decisions_total{class="token_address"|"token_client",
// outcome="failed_open"}.
func (l *Limiter) AllowTokenAttempt(ctx context.Context, addr, clientID string) auth.AttemptDecision {
	for _, c := range []struct {
		class Class
		v     string
		by    string
		rate  int
	}{
		{TokenAddress, addr, "address", l.d.TokenPerAddressPerMinute},
		{TokenClient, clientID, "client", l.d.TokenPerClientPerMinute},
	} {
		lim := redis_rate.PerMinute(c.rate)
		d := Decision{Limit: lim.Rate, class: c.class, window: lim.Period, n: 1, burst: lim.Burst}
		m := l.classes[c.class]
		// The principal only names the budget in the failing-open log line.
		d, err := l.ask(ctx, m, c.class, auth.Principal{ClientID: clientID}, tokenKey(c.class, c.v), lim, 1, d)
		counted(m, d, err)
		if !d.Allowed {
			return auth.AttemptDecision{RetryAfter: d.RetryAfter, By: c.by}
		}
	}
	return auth.AttemptDecision{Allowed: true}
}
