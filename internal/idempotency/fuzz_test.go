package idempotency

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// FuzzRecord decodes arbitrary stored records (Redis bytes). A record is
// refused with an error or is one Middleware could have stored: it encodes
// and decodes to itself, and a finished one replays without a panic.
func FuzzRecord(f *testing.F) {
	for _, r := range []record{
		{Fingerprint: "ab"},
		{Fingerprint: "ab", Done: true, Status: 201, ContentType: "application/json", Body: []byte(`{"id":"x"}`)},
		{Fingerprint: "ab", Done: true, Status: 404},
	} {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	for _, s := range []string{`{"f":"x","d":true,"s":0}`, `{"f":"x","d":true,"s":1000}`, `{"f":"x","d":true,"s":99}`, `{"b":"!"}`, `null`, ``, `{"s":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := decodeRecord(raw)
		if err != nil {
			return
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("%q: decoded %+v does not encode: %v", raw, rec, err)
		}
		again, err := decodeRecord(b)
		if err != nil || !reflect.DeepEqual(again, rec) && !(len(again.Body) == 0 && len(rec.Body) == 0) {
			t.Fatalf("%q: %+v encodes to %s, which decodes to %+v, %v", raw, rec, b, again, err)
		}
		if rec.Done {
			w := httptest.NewRecorder()
			w.WriteHeader(rec.Status) // panics for a status net/http refuses
			_, _ = w.Write(rec.Body)
		}
	})
}

// FuzzKeyHeader sends arbitrary Idempotency-Key headers. Without one the
// request passes through untouched; a key over 255 bytes is refused with
// 400 before the store is asked. (Other keys need Redis: the integration
// tests cover them.)
func FuzzKeyHeader(f *testing.F) {
	f.Add("", 0)
	f.Add("k", 255)
	f.Add("日本", 300)
	s := New(nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, key string, pad int) {
		key += strings.Repeat("x", min(max(pad, 0), 1000))
		if key != "" && len(key) <= 255 {
			return
		}
		passed := false
		h := s.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed = true }))
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
		if key != "" {
			r.Header[Header] = []string{key}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case key == "" && !passed:
			t.Fatal("a request without a key did not pass through")
		case key != "" && (passed || w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid_idempotency_key")):
			t.Fatalf("key of %d bytes: passed %v, %d %s", len(key), passed, w.Code, w.Body)
		}
	})
}
