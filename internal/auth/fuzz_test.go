package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fuzzNow is the fixed clock of the token fuzzer.
var fuzzNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fuzzKey is the ring key the fuzzed tokens are checked against.
var fuzzKey = bytes.Repeat([]byte{0x42}, 32)

func fuzzTokens(t testing.TB, key []byte) *Tokens {
	ring, err := ParseKeyRing("k1 " + base64.RawURLEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	tok := NewTokens(ring, time.Hour, 0)
	tok.Now = func() time.Time { return fuzzNow }
	return tok
}

// fuzzSign signs claims with fuzzKey as Issue does (kid k1).
func fuzzSign(t testing.TB, alg jwt.SigningMethod, c jwt.Claims) string {
	tok := jwt.NewWithClaims(alg, c)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzVerify presents arbitrary tokens, seeded with tokens signed by the
// ring's key (valid, expired, of another algorithm, lacking claims). Verify
// must never accept a token it did not issue: an accepted token is three
// segments whose header names HS256 and a ring key, whose signature is the
// HMAC of the first two under that key and written exactly as Issue writes
// it, with iss kakin, an expiry not yet passed, a subject and a valid
// tenant. A ring with another key accepts none of them.
func FuzzVerify(f *testing.F) {
	valid := func(mod func(*claims)) jwt.Claims {
		c := claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: Issuer, Subject: "kc_a", IssuedAt: jwt.NewNumericDate(fuzzNow.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(fuzzNow.Add(time.Hour)), ID: "j"}, Tenant: "acme", Scope: "usage:write usage:read"}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	good := fuzzSign(f, jwt.SigningMethodHS256, valid(nil))
	// The signature's last character carries 4 bits of the HMAC and 2 that
	// base64 ignores: the same signature written differently.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	lenient := good[:len(good)-1] + string(alphabet[strings.IndexByte(alphabet, good[len(good)-1])^1])
	for _, s := range []string{
		good,
		good[:len(good)-1] + string(good[len(good)-1]^1), // the signature's last character changed
		good + "=",
		lenient,
		fuzzSign(f, jwt.SigningMethodHS384, valid(nil)),
		fuzzSign(f, jwt.SigningMethodHS256, valid(func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(fuzzNow.Add(-time.Hour)) })),
		fuzzSign(f, jwt.SigningMethodHS256, valid(func(c *claims) { c.ExpiresAt = nil })),
		fuzzSign(f, jwt.SigningMethodHS256, valid(func(c *claims) { c.Tenant = "Not/A/Tenant" })),
		fuzzSign(f, jwt.SigningMethodHS256, valid(func(c *claims) { c.Issuer = "other" })),
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJrYWtpbiIsInN1YiI6ImEiLCJ0ZW4iOiJhY21lIn0.",
		"", "a.b.c", "...",
	} {
		f.Add(s)
	}
	tokens := fuzzTokens(f, fuzzKey)
	others := fuzzTokens(f, bytes.Repeat([]byte{0x43}, 32))
	f.Fuzz(func(t *testing.T, token string) {
		if _, err := others.Verify(token); err == nil {
			t.Fatalf("%q: accepted by a ring with another key", token)
		}
		p, err := tokens.Verify(token)
		if err != nil {
			var te *TokenError
			if !errorsAs(err, &te) || (te.Code != CodeInvalidToken && te.Code != CodeTokenExpired) {
				t.Fatalf("%q: error %v is not a TokenError", token, err)
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("%q: accepted with %d segments", token, len(parts))
		}
		var header struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		hb, herr := base64.RawURLEncoding.Strict().DecodeString(parts[0])
		if herr != nil || json.Unmarshal(hb, &header) != nil || header.Alg != "HS256" || header.Kid != "k1" {
			t.Fatalf("%q: accepted with header %s (%v)", token, hb, herr)
		}
		mac := hmac.New(sha256.New, fuzzKey)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); parts[2] != want {
			t.Fatalf("%q: accepted with signature %q; the key signs it %q", token, parts[2], want)
		}
		var c claims
		cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if err := json.Unmarshal(cb, &c); err != nil || c.Issuer != Issuer || c.ExpiresAt == nil ||
			!fuzzNow.Before(c.ExpiresAt.Add(DefaultLeeway)) || c.Subject == "" || c.Tenant != p.Tenant || p.ClientID != c.Subject {
			t.Fatalf("%q: accepted with claims %s as %+v", token, cb, p)
		}
	})
}

func errorsAs(err error, te **TokenError) bool {
	e, ok := err.(*TokenError)
	*te = e
	return ok
}

// FuzzClientCredentials checks the token endpoint's HTTP Basic parsing
// (RFC 6749 §2.3.1: id and secret form-urlencoded, then base64). Credentials
// encoded so come back exactly, unless one is empty (401 invalid_client);
// an arbitrary Authorization header is accepted only as Basic credentials
// with both parts, and is otherwise refused with a JSON OAuth error.
func FuzzClientCredentials(f *testing.F) {
	f.Add("kc_aaaaaaaaaaaaaaaaaaaaaaaa", "s3cr3t", "")
	f.Add("a:b", "c d+e%", "Basic "+base64.StdEncoding.EncodeToString([]byte("a%3Ab:c")))
	f.Add("", "x", "Basic !!!")
	f.Add("日本", "", "basic Og==")
	f.Add("x", "y", "Bearer abc")
	f.Add("%zz", "y", "Basic "+base64.StdEncoding.EncodeToString([]byte("%zz:y")))
	a := &Authenticator{m: newMetrics(nil, nil)}
	f.Fuzz(func(t *testing.T, id, secret, header string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))))
		rec := httptest.NewRecorder()
		gid, gsecret, ok := a.clientCredentials(rec, r, url.Values{})
		if want := id != "" && secret != ""; ok != want || ok && (gid != id || gsecret != secret) {
			t.Fatalf("%q:%q: got %q:%q ok %v", id, secret, gid, gsecret, ok)
		}
		if !ok && rec.Code != http.StatusUnauthorized {
			t.Fatalf("%q:%q: refused with %d", id, secret, rec.Code)
		}

		r = httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
		r.Header["Authorization"] = []string{header}
		rec = httptest.NewRecorder()
		gid, gsecret, ok = a.clientCredentials(rec, r, url.Values{})
		if ok {
			bid, bsecret, basic := r.BasicAuth()
			if !basic || gid == "" || gsecret == "" {
				t.Fatalf("%q: accepted as %q:%q (basic %v %q:%q)", header, gid, gsecret, basic, bid, bsecret)
			}
			return
		}
		var e oauthError
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || rec.Code != http.StatusUnauthorized && rec.Code != http.StatusBadRequest {
			t.Fatalf("%q: refused with %d %s", header, rec.Code, rec.Body)
		}
	})
}
