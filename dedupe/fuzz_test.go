package dedupe

import (
	"testing"

	"github.com/kakin-dev/kakin/schemas"
)

// FuzzClaim decodes arbitrary stored claims (Redis bytes): 16 bytes decode
// to the claim that encodes to them again, anything else is refused.
func FuzzClaim(f *testing.F) {
	f.Add([]byte("\x00\x01\x00\x00\x00\x00\x10\x00\xde\xad\xbe\xef\x69\x00\x00\x00"))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeClaim(string(b))
		if err != nil {
			if len(b) == claimLen {
				t.Fatalf("%x: refused: %v", b, err)
			}
			return
		}
		if len(b) != claimLen {
			t.Fatalf("%x: %d bytes accepted", b, len(b))
		}
		packed, err := encodeClaim(c)
		if err != nil || string(packed[:]) != string(b) {
			t.Fatalf("%x: decoded %+v encodes to %x, %v", b, c, packed, err)
		}
	})
}

// FuzzLocate: a claim's bucket key names its tenant (for any valid tenant
// and any id), and bucketTenant refuses what is not a bucket key.
func FuzzLocate(f *testing.F) {
	f.Add("acme", "e1", "dd:acme:{0a}xy")
	f.Add("a-1", "日本", "dd::{00}ab")
	f.Add("x", "", "dd:a:b:{zz}\x00\x00")
	f.Fuzz(func(t *testing.T, tenant, id, key string) {
		if schemas.ValidTenant(tenant) {
			loc := locate(tenant, id)
			got, tag, ok := bucketTenant(loc.key)
			if !ok || got != tenant || len(tag) != 2 || len(loc.field) != fieldLen {
				t.Fatalf("%q/%q: key %q reads as %q %q %v", tenant, id, loc.key, got, tag, ok)
			}
		}
		if got, tag, ok := bucketTenant(key); ok && (len(key) != len(keyPrefix)+len(got)+7 || key[:len(keyPrefix)] != keyPrefix || len(tag) != 2) {
			t.Fatalf("%q read as tenant %q tag %q", key, got, tag)
		}
	})
}

// FuzzDecodeEvent reads arbitrary usage.raw values as dedupe does when it
// must: an event with tenant and id, or an error.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"tenant":"acme","id":"e1","customer":"c1","element":"e","quantity":"1","time":"2026-11-01T00:00:00Z"}`))
	f.Add([]byte(`{"tenant":"acme"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, value []byte) {
		ev, err := decodeEvent(value)
		if err == nil && (ev == nil || ev.Tenant == "" || ev.ID == "") {
			t.Fatalf("%q: accepted as %+v", value, ev)
		}
		if err != nil && ev != nil {
			t.Fatalf("%q: refused (%v) with an event", value, err)
		}
	})
}
