package page

import (
	"net/url"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzCursor issues a cursor for a fuzzed query and page, then presents
// the cursor, a byte of it changed, and arbitrary text. The issued cursor
// gives back its page under its scope and nothing under another; a cursor
// the codec did not issue is refused, and an altered one that is still
// accepted gives back exactly the issued page (only bits base64 ignores
// changed).
func FuzzCursor(f *testing.F) {
	f.Add("acme", "records", "c-1", "2026-11-01T00:00:00Z", 10, 3, byte('x'), "")
	f.Add("acme", "", "", "", 1, 0, byte(0), "eyJzIjoiIiwiYSI6bnVsbCwibiI6MSwidiI6MX0.AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("t", "jobs", "a\x00b", "日本", 1000, 57, byte('\n'), "x.y")
	codec := NewCodec([]byte("fuzz secret"), 1000)
	other := NewCodec([]byte("another secret"), 1000)
	f.Fuzz(func(t *testing.T, tenant, route, last1, last2 string, size, at int, to byte, raw string) {
		if !utf8.ValidString(last1) || !utf8.ValidString(last2) {
			// The cursor is JSON: invalid UTF-8 in a row key would come
			// back as U+FFFD. Row keys (record ids, customer ids, codes)
			// are checked to be UTF-8 where they enter.
			return
		}
		scope := Scope(tenant, route)
		if size < 1 || size > codec.MaxSize() {
			size = DefaultSize
		}
		issued := Request{Size: size, scope: scope}
		tok := codec.Next(issued, true, last1, last2)
		check := func(tok string) (Request, bool) {
			req, errs := codec.Parse(url.Values{"nextPage": {tok}}, scope)
			return req, len(errs) == 0
		}
		req, ok := check(tok)
		if !ok || req.Size != size || !slices.Equal(req.After, []string{last1, last2}) {
			t.Fatalf("issued cursor %q: %+v ok %v", tok, req, ok)
		}
		if _, errs := codec.Parse(url.Values{"nextPage": {tok}}, Scope(tenant, route+"x")); len(errs) == 0 {
			t.Fatalf("cursor %q accepted under another scope", tok)
		}
		if _, errs := other.Parse(url.Values{"nextPage": {tok}}, scope); len(errs) == 0 {
			t.Fatalf("cursor %q accepted by a codec with another key", tok)
		}
		if len(tok) > 0 {
			b := []byte(tok)
			b[(at%len(b)+len(b))%len(b)] = to
			if req2, ok := check(string(b)); ok && (req2.Size != req.Size || !slices.Equal(req2.After, req.After)) {
				t.Fatalf("altered cursor %q accepted as %+v", b, req2)
			}
		}
		if raw != tok && raw != "" { // an empty nextPage is the first page
			if req3, ok := check(raw); ok && (req3.Size != req.Size || !slices.Equal(req3.After, req.After)) {
				// Only a cursor this codec signed passes: under a fuzzed
				// scope nobody issued, none.
				t.Fatalf("cursor %q not issued here accepted as %+v", raw, req3)
			}
		}
	})
}
