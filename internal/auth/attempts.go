package auth

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// AttemptLimiter bounds how often the token endpoint may try client
// credentials, per remote address and per client id attempted. The token
// endpoint asks it before it hashes anything: every attempt that reaches the
// hash costs ~25 ms of a core and 19 MiB (argon2id), whether the client id
// exists or not, so this check is what keeps one address from spending the
// process's CPU on guesses. internal/ratelimit implements it in Redis.
type AttemptLimiter interface {
	// AllowTokenAttempt decides whether one more attempt from addr (see
	// RemoteAddress) with clientID may be tried, and counts it if so.
	AllowTokenAttempt(ctx context.Context, addr, clientID string) AttemptDecision
}

// AttemptDecision is the answer of an AttemptLimiter.
type AttemptDecision struct {
	Allowed bool
	// RetryAfter is, when refused, how long until an attempt would pass.
	RetryAfter time.Duration
	// By names the refusing budget when refused: "address" or "client".
	By string
}

// RemoteAddress is the address the token endpoint's per-address limit counts
// a request against: the peer of the TCP connection (http.Request.RemoteAddr),
// never a header — Kakin has no notion of trusted proxies, so
// X-Forwarded-For and Forwarded, which any client can set, are ignored. An
// IPv4 address (also one mapped into IPv6) counts as itself; an IPv6 address
// counts as its /64, the smallest block a single host is usually given (one
// host could otherwise rotate through 2^64 addresses). Behind a reverse
// proxy every request comes from the proxy's address, so the proxy must
// limit per client address itself (or the per-address limit be raised).
func RemoteAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
