package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/tenants"
)

func testKeyLine(t testing.TB) string {
	t.Helper()
	l, err := NewKeyLine()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testRing(t testing.TB, lines ...string) *KeyRing {
	t.Helper()
	k, err := ParseKeyRing(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var testPrincipal = Principal{Tenant: "acme", ClientID: "kc_aaaaaaaaaaaaaaaaaaaaaaaa",
	Scopes: []Scope{ScopeUsageWrite, ScopeUsageRead}, Limits: tenants.Limits{IngestEventsPerSecond: 100}}

func TestKeyRingParse(t *testing.T) {
	good := testKeyLine(t)
	short := "k1 " + base64.RawURLEncoding.EncodeToString(make([]byte, 31))
	for name, tc := range map[string]struct {
		text string
		ok   bool
	}{
		"one key":          {good, true},
		"comments, blanks": {"# keys\n\n" + good + "\n", true},
		"padded base64":    {"k1 " + base64.URLEncoding.EncodeToString(make([]byte, 32)), true},
		"empty":            {"# nothing\n", false},
		"short key":        {short, false},
		"not base64url":    {"k1 " + strings.Repeat("+", 44), false},
		"three fields":     {good + " extra", false},
		"duplicate kid":    {"k " + strings.Fields(good)[1] + "\nk " + strings.Fields(good)[1], false},
	} {
		_, err := ParseKeyRing(tc.text)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", name, err, tc.ok)
		}
	}
}

func TestGenerateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "token-keys")
	created, err := GenerateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	if created, err := GenerateKeyFile(path); err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("existing key file was changed")
	}
	ring, err := LoadKeyRing(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ring.KIDs()) != 1 {
		t.Fatalf("kids = %v", ring.KIDs())
	}
}

func TestIssueVerify(t *testing.T) {
	tok := NewTokens(testRing(t, testKeyLine(t)), time.Hour, 0)
	s, exp, err := tok.Issue(testPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(clock.Now()); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Fatalf("expires in %s", d)
	}
	p, err := tok.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant != testPrincipal.Tenant || p.ClientID != testPrincipal.ClientID ||
		!slices.Equal(p.Scopes, testPrincipal.Scopes) || p.Limits != testPrincipal.Limits {
		t.Fatalf("principal = %+v", p)
	}
	// The claims are the documented ones.
	var mc jwt.MapClaims
	parsed, _, err := jwt.NewParser().ParseUnverified(s, &mc)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "sub", "ten", "scp", "lim", "iat", "exp", "jti"} {
		if _, ok := mc[k]; !ok {
			t.Errorf("claim %s missing: %v", k, mc)
		}
	}
	if mc["scp"] != "usage:write usage:read" || mc["iss"] != "kakin" || parsed.Header["kid"] == nil || parsed.Header["alg"] != "HS256" {
		t.Fatalf("claims %v header %v", mc, parsed.Header)
	}
}

func TestVerifyRefuses(t *testing.T) {
	line := testKeyLine(t)
	kid := strings.Fields(line)[0]
	key, _ := base64.RawURLEncoding.DecodeString(strings.Fields(line)[1])
	tok := NewTokens(testRing(t, line), time.Hour, 5*time.Second)
	good, _, err := tok.Issue(testPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	stdClaims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "kakin", "sub": "kc_x", "ten": "acme", "scp": "admin",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j"}
	}
	sign := func(m jwt.SigningMethod, k any, c jwt.MapClaims, kid string) string {
		t.Helper()
		tk := jwt.NewWithClaims(m, c)
		if kid != "" {
			tk.Header["kid"] = kid
		}
		s, err := tk.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	withClaim := func(k string, v any) jwt.MapClaims { c := stdClaims(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := stdClaims(); delete(c, k); return c }
	parts := strings.Split(good, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[5] == 'A' {
			b[5] = 'B'
		} else {
			b[5] = 'A'
		}
		return string(b)
	}
	otherKey := make([]byte, 32)
	rand.Read(otherKey)

	cases := []struct {
		name, token, code string
	}{
		{"tampered payload", parts[0] + "." + flip(parts[1]) + "." + parts[2], CodeInvalidToken},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), CodeInvalidToken},
		{"truncated", parts[0] + "." + parts[1], CodeInvalidToken},
		{"garbage", "not-a-jwt", CodeInvalidToken},
		{"empty", "", CodeInvalidToken},
		{"too long", strings.Repeat("a", maxTokenLen+1), CodeInvalidToken},
		{"unknown kid", sign(jwt.SigningMethodHS256, key, stdClaims(), "other-kid"), CodeInvalidToken},
		{"no kid", sign(jwt.SigningMethodHS256, key, stdClaims(), ""), CodeInvalidToken},
		{"known kid, other key", sign(jwt.SigningMethodHS256, otherKey, stdClaims(), kid), CodeInvalidToken},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, stdClaims(), kid), CodeInvalidToken},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey, stdClaims(), kid), CodeInvalidToken},
		{"HS384 same key", sign(jwt.SigningMethodHS384, key, stdClaims(), kid), CodeInvalidToken},
		{"HS512 same key", sign(jwt.SigningMethodHS512, key, stdClaims(), kid), CodeInvalidToken},
		{"wrong issuer", sign(jwt.SigningMethodHS256, key, withClaim("iss", "evil"), kid), CodeInvalidToken},
		{"no exp", sign(jwt.SigningMethodHS256, key, without("exp"), kid), CodeInvalidToken},
		{"no sub", sign(jwt.SigningMethodHS256, key, without("sub"), kid), CodeInvalidToken},
		{"bad tenant", sign(jwt.SigningMethodHS256, key, withClaim("ten", "Bad/Tenant"), kid), CodeInvalidToken},
		{"iat in the future", sign(jwt.SigningMethodHS256, key, withClaim("iat", now.Add(time.Minute).Unix()), kid), CodeInvalidToken},
		{"expired", sign(jwt.SigningMethodHS256, key, withClaim("exp", now.Add(-time.Minute).Unix()), kid), CodeTokenExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tok.Verify(tc.token)
			var te *TokenError
			if !errors.As(err, &te) || te.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
		})
	}
	// Within the leeway an expired token still passes; a forged alg-none
	// token with the real payload does not.
	if _, err := tok.Verify(sign(jwt.SigningMethodHS256, key, withClaim("exp", now.Add(-2*time.Second).Unix()), kid)); err != nil {
		t.Fatalf("token 2s past exp with 5s leeway: %v", err)
	}
	if _, err := tok.Verify(`eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.` + parts[1] + `.`); err == nil {
		t.Fatal("alg none with a real payload accepted")
	}
}

func TestExpiryWithClock(t *testing.T) {
	tok := NewTokens(testRing(t, testKeyLine(t)), time.Minute, time.Second)
	s, _, err := tok.Issue(testPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	start := clock.Now()
	tok.Now = func() time.Time { return start.Add(59 * time.Second) }
	if _, err := tok.Verify(s); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	tok.Now = func() time.Time { return start.Add(62 * time.Second) }
	var te *TokenError
	if _, err := tok.Verify(s); !errors.As(err, &te) || te.Code != CodeTokenExpired {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	oldLine, newLine := testKeyLine(t), testKeyLine(t)
	write := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(oldLine)
	ring, err := LoadKeyRing(path)
	if err != nil {
		t.Fatal(err)
	}
	tok := NewTokens(ring, time.Hour, 0)
	oldTok, _, _ := tok.Issue(testPrincipal)

	// Step 1: the new key goes first; the old one still verifies.
	write(newLine, oldLine)
	if changed, err := ring.Reload(); err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
	if changed, _ := ring.Reload(); changed {
		t.Fatal("reload of an unchanged file reported a change")
	}
	newTok, _, _ := tok.Issue(testPrincipal)
	if kid := headerKID(t, newTok); kid != strings.Fields(newLine)[0] {
		t.Fatalf("new token signed with %s, want the new key", kid)
	}
	for name, s := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := tok.Verify(s); err != nil {
			t.Fatalf("%s token during rotation: %v", name, err)
		}
	}

	// A broken file is refused and the ring keeps its keys.
	write("garbage")
	if _, err := ring.Reload(); err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	if _, err := tok.Verify(oldTok); err != nil {
		t.Fatalf("old token after failed reload: %v", err)
	}

	// Step 2: the old key is removed; its tokens are refused.
	write(newLine)
	if _, err := ring.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify(oldTok); err == nil {
		t.Fatal("token of a removed key accepted")
	}
	if _, err := tok.Verify(newTok); err != nil {
		t.Fatalf("new token after rotation: %v", err)
	}
}

func headerKID(t *testing.T, s string) string {
	t.Helper()
	tk, _, err := jwt.NewParser().ParseUnverified(s, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tk.Header["kid"].(string)
	return kid
}

func TestHashFormat(t *testing.T) {
	h, err := hashSecret("s3cret", testHash)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 5 || parts[0] != "argon2id" || parts[1] != "v=19" || parts[2] != "m=64,t=1,p=1" {
		t.Fatalf("hash %q", h)
	}
	h2, _ := hashSecret("s3cret", testHash)
	if h == h2 {
		t.Fatal("two hashes of one secret are equal: salt not random")
	}
	for _, tc := range []struct {
		secret, hash string
		ok           bool
		err          bool
	}{
		{"s3cret", h, true, false},
		{"s3cret!", h, false, false},
		{"", h, false, false},
		{"s3cret", "argon2i$v=19$m=64,t=1,p=1$AA$AA", false, true},
		{"s3cret", "argon2id$v=18$m=64,t=1,p=1$AA$AA", false, true},
		{"s3cret", "plain", false, true},
	} {
		ok, err := verifySecret(tc.secret, tc.hash)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("verify(%q, %q) = %v, %v", tc.secret, tc.hash, ok, err)
		}
	}
}

// TestDefaultHashCost reports what one production hash costs here.
func TestDefaultHashCost(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	h, _ := hashSecret("x", DefaultHashParams)
	var ds []time.Duration
	for range 9 {
		start := time.Now()
		if ok, _ := verifySecret("x", h); !ok {
			t.Fatal("no match")
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("argon2id m=%d KiB t=%d p=%d: min %s median %s max %s", DefaultHashParams.Memory, DefaultHashParams.Time,
		DefaultHashParams.Threads, ds[0], ds[len(ds)/2], ds[len(ds)-1])
}

// BenchmarkVerify is Verify of a token seen before (the common case: a
// client reuses its token until it expires).
func BenchmarkVerify(b *testing.B) {
	tok := NewTokens(testRing(b, testKeyLine(b), testKeyLine(b)), time.Hour, 0)
	s, _, err := tok.Issue(Principal{Tenant: "acme-corp", ClientID: "kc_abcdefghijklmnopqrstuvwx",
		Scopes: []Scope{ScopeUsageWrite, ScopeUsageRead}, Limits: tenants.Limits{IngestEventsPerSecond: 1000, AdminRequestsPerMinute: 60}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Verify(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached is the full check of a token not seen before:
// base64 + JSON decode of header and claims, HMAC-SHA256, claim checks.
func BenchmarkVerifyUncached(b *testing.B) {
	tok := NewTokens(testRing(b, testKeyLine(b), testKeyLine(b)), time.Hour, 0)
	s, _, err := tok.Issue(Principal{Tenant: "acme-corp", ClientID: "kc_abcdefghijklmnopqrstuvwx",
		Scopes: []Scope{ScopeUsageWrite, ScopeUsageRead}, Limits: tenants.Limits{IngestEventsPerSecond: 1000, AdminRequestsPerMinute: 60}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tok.verify(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	tok := NewTokens(testRing(b, testKeyLine(b)), time.Hour, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tok.Issue(testPrincipal); err != nil {
			b.Fatal(err)
		}
	}
}
