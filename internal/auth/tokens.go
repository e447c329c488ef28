package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/kakin-dev/kakin/tenants"
)

// Issuer is the "iss" of every Kakin access token.
const Issuer = "kakin"

// DefaultTokenTTL is how long an access token lives unless configured.
const DefaultTokenTTL = time.Hour

// DefaultLeeway is the clock skew tolerated on exp and iat.
const DefaultLeeway = 30 * time.Second

// maxTokenLen bounds what Verify looks at; real tokens are ~400 bytes.
const maxTokenLen = 4096

// Token error codes (the "code" of the 401 problem).
const (
	CodeInvalidToken = "invalid_token"
	CodeTokenExpired = "token_expired"
)

// TokenError is why a token was refused.
type TokenError struct {
	Code string // CodeInvalidToken or CodeTokenExpired
	Err  error
}

func (e *TokenError) Error() string { return e.Code + ": " + e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// claims are the claims of a Kakin access token.
type claims struct {
	jwt.RegisteredClaims                // iss, sub (client id), iat, exp, jti
	Tenant               string         `json:"ten"`
	Scope                string         `json:"scp"` // space-separated
	Limits               tenants.Limits `json:"lim"` // client limits merged with the tenant's
}

// Tokens issues and verifies HS256 access tokens signed with a KeyRing.
// Only HS256 is accepted (no "none", no RS256/HS384 alg confusion), the kid
// header must name a key of the ring, iss must be "kakin", and exp and iat
// are required and checked with Leeway.
type Tokens struct {
	keys   *KeyRing
	ttl    time.Duration
	leeway time.Duration
	parser *jwt.Parser
	cache  verifiedCache
	// Now is the clock (clock.Now); tests may replace it.
	Now func() time.Time
}

// NewTokens returns a token issuer/verifier over keys. ttl is the lifetime
// of issued tokens (0: DefaultTokenTTL); leeway the clock skew tolerated on
// exp and iat (0: DefaultLeeway).
func NewTokens(keys *KeyRing, ttl, leeway time.Duration) *Tokens {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	if leeway <= 0 {
		leeway = DefaultLeeway
	}
	t := &Tokens{keys: keys, ttl: ttl, leeway: leeway, Now: clock.Now}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return t.Now() }),
		// Only base64 as Issue writes it: leniently, a signature's last
		// character has four spellings, so a token it never issued would
		// verify (and miss the verified-token cache).
		jwt.WithStrictDecoding(),
	)
	return t
}

// TTL is the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs a token for p with the ring's first key and returns it with
// its expiry.
func (t *Tokens) Issue(p Principal) (string, time.Time, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	now := t.Now().Truncate(time.Second)
	exp := now.Add(t.ttl)
	scopes := make([]string, len(p.Scopes))
	for i, s := range p.Scopes {
		scopes[i] = string(s)
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: p.ClientID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
			ID: base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		Tenant: p.Tenant, Scope: strings.Join(scopes, " "), Limits: p.Limits,
	}
	kid, key := t.keys.signing()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	return s, exp, nil
}

var (
	errUnknownKID = errors.New("token signed with an unknown key")
	errAlg        = errors.New("token not signed with HS256")
	errClaims     = errors.New("token lacks sub or a valid ten claim")
	errTooLong    = errors.New("token too long")
)

// Verify checks token and returns its principal. Errors are *TokenError.
//
// A token that verified is remembered (up to verifiedCacheSize tokens) with
// its expiry and the key set that verified it, so the same token presented
// again costs a map lookup instead of a JSON decode and an HMAC: clients
// reuse one token for its whole lifetime. A hit is honoured only for the
// identical token string, before its exp (plus leeway), and while the key
// ring is unchanged. The returned Scopes slice may be shared: treat it as
// read-only.
func (t *Tokens) Verify(token string) (Principal, error) {
	set := t.keys.set.Load()
	now := t.Now()
	if p, ok := t.cache.get(token, set, now); ok {
		return p, nil
	}
	p, exp, err := t.verify(token)
	if err != nil {
		return Principal{}, err
	}
	t.cache.put(token, set, exp.Add(t.leeway), p)
	return p, nil
}

// verify fully checks token: signature, alg, kid, claims.
func (t *Tokens) verify(token string) (Principal, time.Time, error) {
	if len(token) > maxTokenLen {
		return Principal{}, time.Time{}, &TokenError{CodeInvalidToken, errTooLong}
	}
	var c claims
	_, err := t.parser.ParseWithClaims(token, &c, t.keyFunc)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Principal{}, time.Time{}, &TokenError{CodeTokenExpired, err}
		}
		return Principal{}, time.Time{}, &TokenError{CodeInvalidToken, err}
	}
	if c.Subject == "" || !schemas.ValidTenant(c.Tenant) || c.ExpiresAt == nil {
		return Principal{}, time.Time{}, &TokenError{CodeInvalidToken, errClaims}
	}
	p := Principal{Tenant: c.Tenant, ClientID: c.Subject, Scopes: splitScopes(c.Scope), Limits: c.Limits}
	return p, c.ExpiresAt.Time, nil
}

// verifiedCacheSize bounds the verified-token cache (~1 KiB per entry).
const verifiedCacheSize = 8192

const cacheShards = 16

// verifiedCache remembers verified tokens. When a shard is full an arbitrary
// entry is dropped.
type verifiedCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	p     Principal
	until time.Time // exp + leeway
	keys  *keySet   // the ring state that verified the token
}

func (c *verifiedCache) shard(token string) *cacheShard {
	// The signature is uniformly random: use its second-to-last character
	// (the last one of a 32-byte HMAC carries only 4 bits).
	var b byte
	if len(token) > 1 {
		b = token[len(token)-2]
	}
	return &c.shards[int(b)%cacheShards]
}

func (c *verifiedCache) get(token string, keys *keySet, now time.Time) (Principal, bool) {
	s := c.shard(token)
	s.mu.Lock()
	e, ok := s.m[token]
	if ok && (e.keys != keys || !now.Before(e.until)) {
		delete(s.m, token)
		ok = false
	}
	s.mu.Unlock()
	return e.p, ok
}

func (c *verifiedCache) put(token string, keys *keySet, until time.Time, p Principal) {
	s := c.shard(token)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]cacheEntry)
	}
	if len(s.m) >= verifiedCacheSize/cacheShards {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[token] = cacheEntry{p: p, until: until, keys: keys}
	s.mu.Unlock()
}

func (t *Tokens) keyFunc(tok *jwt.Token) (any, error) {
	// WithValidMethods already refuses other algs; this guards against a
	// future parser change handing us a token of another method.
	if tok.Method != jwt.SigningMethodHS256 {
		return nil, errAlg
	}
	kid, _ := tok.Header["kid"].(string)
	key, ok := t.keys.lookup(kid)
	if !ok {
		return nil, errUnknownKID
	}
	return key, nil
}

// splitScopes parses a space-separated scope claim with one allocation.
func splitScopes(s string) []Scope {
	n := strings.Count(s, " ") + 1
	out := make([]Scope, 0, n)
	for f := range strings.FieldsSeq(s) {
		out = append(out, Scope(f))
	}
	return out
}
