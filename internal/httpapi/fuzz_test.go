package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzBody has the field kinds admin bodies have (reasons, ids, limits,
// scopes, times).
type fuzzBody struct {
	Reason  string            `json:"reason"`
	Name    *string           `json:"name"`
	Limit   int               `json:"limit"`
	Enabled *bool             `json:"enabled"`
	Scopes  []string          `json:"scopes"`
	Labels  map[string]string `json:"labels"`
	At      time.Time         `json:"at"`
}

// FuzzDecodeStrict posts arbitrary bodies to DecodeStrict. It lets a body
// through exactly when encoding/json (unknown fields refused) decodes it as
// one JSON value, with encoding/json's value; an empty optional body leaves
// the value as it was; every refusal is a 400 invalid_body problem, naming
// at least one error unless the body is empty.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"reason":"typo","name":"n","limit":3,"enabled":true,"scopes":["usage:write"],"labels":{"a":"b"},"at":"2026-11-01T00:00:00Z"}`,
		``, ` `, `{"reason":5,"limit":"x","colour":"red"}`, `{"reason":"a"} {"reason":"b"}`, `{"reason":`, `null`, `[]`,
		`{"at":"2026-11-01"}`, `{"REASON":"case"}`, `{"labels":{"\xff":"x"}}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, optional bool) {
		rec := httptest.NewRecorder()
		sentinel := "untouched"
		got := fuzzBody{Reason: sentinel}
		ok := DecodeStrict(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)), &got, optional)

		empty := len(bytes.TrimSpace(body)) == 0
		want := fuzzBody{Reason: sentinel} // encoding/json leaves absent fields as they are
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		jerr := dec.Decode(&want)
		if jerr == nil {
			if _, end := dec.Token(); end != io.EOF {
				jerr = errors.New("more than one value")
			}
		}
		switch {
		case empty && optional:
			if !ok || got.Reason != sentinel {
				t.Fatalf("empty optional body: ok %v, value %+v", ok, got)
			}
			return
		case empty:
			jerr = errors.New("empty")
		}
		if ok != (jerr == nil) {
			t.Fatalf("%q: DecodeStrict %v, encoding/json %v", body, ok, jerr)
		}
		if ok {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: decoded %+v, encoding/json %+v", body, got, want)
			}
			return
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusBadRequest || p.Code != "invalid_body" ||
			rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%q: refused with %d %s", body, rec.Code, rec.Body)
		}
		if !empty && len(p.Errors) == 0 {
			t.Fatalf("%q: refused naming no error: %s", body, rec.Body)
		}
	})
}

// FuzzKnownQuery sends arbitrary query strings to a route that knows
// pageSize and nextPage. A request passes exactly when its query parses and
// names only those; a refused one gets 400 invalid_query naming each
// unknown parameter once, in name order.
func FuzzKnownQuery(f *testing.F) {
	for _, s := range []string{"", "pageSize=10", "pageSize=10&nextPage=abc", "pagesize=1", "a=1&b=2&a=3", "x", "=1", "%zz=1", "pageSize=%",
		"a;b=1", "pageSize=1;x=2", "&&", "%70ageSize=1", "+=+", "a%00=1"} {
		f.Add(s)
	}
	known := []string{"pageSize", "nextPage"}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = raw
		rec := httptest.NewRecorder()
		ok := KnownQuery(rec, r, known...)
		q, perr := url.ParseQuery(raw)
		var unknown []string
		for name := range q {
			if !slices.Contains(known, name) {
				unknown = append(unknown, name)
			}
		}
		slices.Sort(unknown)
		if want := perr == nil && len(unknown) == 0; ok != want {
			t.Fatalf("%q: KnownQuery %v, want %v (parse error %v, unknown %q)", raw, ok, want, perr, unknown)
		}
		if ok {
			return
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusBadRequest || p.Code != "invalid_query" || len(p.Errors) == 0 {
			t.Fatalf("%q: refused with %d %s", raw, rec.Code, rec.Body)
		}
		if perr != nil {
			return
		}
		var named []string
		for _, e := range p.Errors {
			named = append(named, e.Field)
		}
		var sent []string // as the problem's JSON carries them (U+FFFD for bad bytes)
		b, _ := json.Marshal(unknown)
		_ = json.Unmarshal(b, &sent)
		if !slices.Equal(named, sent) {
			t.Fatalf("%q: named %q, unknown %q", raw, named, unknown)
		}
	})
}

// FuzzVersion sends arbitrary Kakin-Version headers. A request reaches the
// handler exactly when the header (trimmed) is empty or a supported version,
// and then with that version (the oldest when empty) in its context and on
// the response; otherwise it gets 400 unsupported_version naming the newest.
func FuzzVersion(f *testing.F) {
	for _, v := range append([]string{"", " 2026-12-01 ", "2026-12-1", "2027-01-01\t", "latest", "2026-11-01,2027-01-01", "\xff"}, Versions...) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var seen string
		h := WithVersion(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = RequestVersion(r.Context())
			if !AtLeast(r.Context(), Versions[0]) {
				t.Fatalf("%q: version %q is not at least the oldest", v, seen)
			}
		}))
		r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(context.Background())
		r.Header[VersionHeader] = []string{v}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		want := strings.TrimSpace(v)
		if want == "" {
			want = Versions[0]
		}
		if !slices.Contains(Versions, want) {
			if seen != "" || rec.Code != http.StatusBadRequest || rec.Header().Get(VersionHeader) != Versions[len(Versions)-1] {
				t.Fatalf("%q: reached the handler (%q) or answered %d %q", v, seen, rec.Code, rec.Header().Get(VersionHeader))
			}
			return
		}
		if seen != want || rec.Header().Get(VersionHeader) != want {
			t.Fatalf("%q: handler saw %q, response says %q", v, seen, rec.Header().Get(VersionHeader))
		}
	})
}
