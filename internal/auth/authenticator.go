package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure an Authenticator. Zero values take the defaults.
type Options struct {
	TokenTTL          time.Duration // lifetime of issued tokens (DefaultTokenTTL)
	Leeway            time.Duration // clock skew tolerated on exp/iat (DefaultLeeway)
	RevocationRefresh time.Duration // revocation list refresh (DefaultRevocationRefresh, at most MaxRevocationRefresh)
	// MaxConcurrentHashes bounds concurrent argon2id checks on the token
	// endpoint (each takes ~19 MiB and ~25 ms of a core): runtime.NumCPU().
	MaxConcurrentHashes int
	// Attempts, when set, limits token requests per remote address and per
	// client id before any secret is hashed (see AttemptLimiter); nil: only
	// MaxConcurrentHashes bounds the endpoint.
	Attempts   AttemptLimiter
	Log        *slog.Logger          // slog.Default()
	Registerer prometheus.Registerer // metrics; nil: not registered
}

// Guard is what routes are wrapped with: Require(scope)(handler). Both the
// Authenticator and DevInsecure implement it.
type Guard interface {
	Require(scope Scope) func(http.Handler) http.Handler
}

// Authenticator issues access tokens (TokenHandler) and checks them on
// every request (Require). Start Run once per process.
type Authenticator struct {
	store    *Store
	keys     *KeyRing
	tokens   *Tokens
	revoked  *Revocations
	log      *slog.Logger
	hashSem  chan struct{}
	dummy    string // hash compared against when the client id is unknown
	attempts AttemptLimiter
	m        *metrics
}

var _ Guard = (*Authenticator)(nil)

// New returns an Authenticator over store and keys.
func New(store *Store, keys *KeyRing, opts Options) (*Authenticator, error) {
	if store == nil || keys == nil {
		return nil, errors.New("auth: store and keys are required")
	}
	if opts.RevocationRefresh == 0 {
		opts.RevocationRefresh = DefaultRevocationRefresh
	}
	if opts.RevocationRefresh < 0 || opts.RevocationRefresh > MaxRevocationRefresh {
		return nil, fmt.Errorf("auth: revocation refresh %s must be in (0, %s]", opts.RevocationRefresh, MaxRevocationRefresh)
	}
	if opts.TokenTTL < 0 || opts.TokenTTL > 24*time.Hour {
		return nil, fmt.Errorf("auth: token TTL %s must be in (0, 24h]", opts.TokenTTL)
	}
	if opts.MaxConcurrentHashes <= 0 {
		opts.MaxConcurrentHashes = runtime.NumCPU()
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	// The dummy hash uses the store's parameters so that an unknown client
	// costs what a known one does.
	dummy, err := hashSecret("kakin-dummy-secret", store.Hash)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{
		store:    store,
		keys:     keys,
		tokens:   NewTokens(keys, opts.TokenTTL, opts.Leeway),
		revoked:  newRevocations(store, opts.RevocationRefresh, opts.Log),
		log:      opts.Log,
		hashSem:  make(chan struct{}, opts.MaxConcurrentHashes),
		dummy:    dummy,
		attempts: opts.Attempts,
	}
	a.m = newMetrics(opts.Registerer, a.revoked)
	a.revoked.OnFail = a.m.revocationFailures.Inc
	return a, nil
}

// Tokens returns the token issuer/verifier (tests and tools).
func (a *Authenticator) Tokens() *Tokens { return a.tokens }

// Revocations returns the revocation cache (Refresh it to apply a
// revocation at once, e.g. in tests).
func (a *Authenticator) Revocations() *Revocations { return a.revoked }

// Run refreshes the revocation list at once and then every
// RevocationRefresh, and re-reads the key file on the same tick, until ctx
// ends. It always returns nil (failures are logged and counted).
func (a *Authenticator) Run(ctx context.Context) error {
	a.revoked.run(ctx, func() {
		changed, err := a.keys.Reload()
		switch {
		case err != nil:
			a.log.Warn("token keys not reloaded; keeping the current keys", "err", err)
		case changed:
			a.log.Info("token keys reloaded", "kids", a.keys.KIDs(), "signing_kid", a.keys.SigningKID())
		}
	})
	return nil
}

// Ready is a readiness check: it fails until the revocation list is loaded
// (until then authenticated requests get 503).
func (a *Authenticator) Ready(ctx context.Context) error {
	if !a.revoked.Loaded() {
		return errors.New("revocation list not loaded")
	}
	return nil
}

type metrics struct {
	issued             prometheus.Counter
	hashes             prometheus.Counter
	limited            *prometheus.CounterVec
	tokenErrors        *prometheus.CounterVec
	rejected           *prometheus.CounterVec
	revocationFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, r *Revocations) *metrics {
	m := &metrics{
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kakin_auth_tokens_issued_total", Help: "Access tokens issued by the token endpoint."}),
		hashes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kakin_auth_secret_hashes_total", Help: "Client secrets checked by the token endpoint (one argon2id hash each)."}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kakin_auth_token_attempts_limited_total",
			Help: "Token requests refused with 429 before any hash, by the budget that refused them (address, client)."}, []string{"by"}),
		tokenErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kakin_auth_token_errors_total", Help: "Token endpoint refusals by OAuth error code."}, []string{"error"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kakin_auth_rejected_total", Help: "API requests refused by authentication, by problem code."}, []string{"code"}),
		revocationFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kakin_auth_revocation_refresh_failures_total", Help: "Failed refreshes of the revoked-client list."}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.issued, m.hashes, m.limited, m.tokenErrors, m.rejected, m.revocationFailures,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kakin_auth_revocations_age_seconds", Help: "Age of the revoked-client list (0 until first loaded)."},
			func() float64 { return r.Age().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kakin_auth_revocations_stale", Help: "1 when the revoked-client list missed a refresh or was never loaded."},
			func() float64 {
				if r.Stale() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kakin_auth_revoked_clients", Help: "Revoked clients in this process's list."},
			func() float64 { return float64(r.Len()) }),
	)
	return m
}
