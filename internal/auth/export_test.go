package auth

import (
	"context"
	"testing"

	"github.com/kakin-dev/kakin/tenants"
)

// Helpers for the external tests (package auth_test), which may import
// packages that import auth (internal/ratelimit).

// SharedStore is testStore: a Store over the test ClickHouse with cheap hashes.
func SharedStore(t testing.TB) *Store { return testStore(t) }

// NewClientForTest creates a client of a fresh tenant in s.
func NewClientForTest(t testing.TB, s *Store, scopes []Scope) (id, secret string) {
	t.Helper()
	ten := newTenant(t, s)
	id, secret, err := s.CreateClient(context.Background(), ten, "test client", scopes, tenants.Limits{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return id, secret
}

// SharedRedisAddr is the address of the test binary's redis-server; it skips
// t in -short mode.
func SharedRedisAddr(t testing.TB) string {
	t.Helper()
	if shared.redis == nil {
		t.Skip("needs Redis (not in -short mode)")
	}
	return shared.redis.Addr
}

// NewKeyRingForTest is a key ring with one fresh key.
func NewKeyRingForTest(t testing.TB) *KeyRing { return testRing(t, testKeyLine(t)) }
