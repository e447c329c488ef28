// Package idempotency makes POST requests of the admin API safe to retry: a
// request with an Idempotency-Key header is executed once, and a retry with
// the same key and body gets the first answer again. Keys are remembered in
// Redis per tenant and client for a day.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/tenant"
	"github.com/redis/go-redis/v9"
)

// Header is the request header carrying the client's key.
const Header = "Idempotency-Key"

// ReplayedHeader marks an answer that was replayed from an earlier request.
const ReplayedHeader = "Idempotent-Replayed"

// Store remembers answers by key.
type Store struct {
	rdb     redis.UniversalClient
	ttl     time.Duration
	maxBody int64
	log     *slog.Logger
}

// New returns a store that remembers answers for ttl.
func New(rdb redis.UniversalClient, ttl time.Duration, log *slog.Logger) *Store {
	return &Store{rdb: rdb, ttl: ttl, maxBody: 1 << 20, log: log}
}

// record is what is kept per key: the request's fingerprint and, once the
// request finished, its answer.
type record struct {
	Fingerprint string `json:"f"`
	Done        bool   `json:"d"`
	Status      int    `json:"s,omitempty"`
	ContentType string `json:"t,omitempty"`
	Body        []byte `json:"b,omitempty"`
}

// lockTTL bounds how long a request may hold its key while executing.
const lockTTL = 2 * time.Minute

// Middleware applies idempotency to requests that carry the header; requests
// without it pass through unchanged.
func (s *Store) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(Header)
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > 255 {
			httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key must be at most 255 characters",
				httpapi.FieldError{Field: "header:Idempotency-Key", Reason: "at most 255 characters"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
		if err != nil {
			httpapi.WriteProblem(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than 1 MiB")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		fp := fingerprint(r, body)
		rkey := redisKey(r.Context(), key)

		lock, _ := json.Marshal(record{Fingerprint: fp})
		won, err := s.rdb.SetNX(r.Context(), rkey, lock, lockTTL).Result()
		if err != nil {
			s.unavailable(w, err)
			return
		}
		if !won {
			s.replay(w, r.Context(), rkey, fp)
			return
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		ctx := context.WithoutCancel(r.Context())
		if rec.status >= 500 {
			// A failure is not an answer to remember: the retry runs again.
			_ = s.rdb.Del(ctx, rkey).Err()
			return
		}
		done, _ := json.Marshal(record{Fingerprint: fp, Done: true, Status: rec.status,
			ContentType: rec.Header().Get("Content-Type"), Body: rec.body.Bytes()})
		if err := s.rdb.Set(ctx, rkey, done, s.ttl).Err(); err != nil {
			s.log.Warn("idempotency: answer not remembered; a retry would run again", "err", err)
		}
	})
}

func (s *Store) replay(w http.ResponseWriter, ctx context.Context, rkey, fp string) {
	raw, err := s.rdb.Get(ctx, rkey).Bytes()
	if errors.Is(err, redis.Nil) { // expired between SETNX and GET: ask for a retry
		httpapi.RetryAfter(w, time.Second)
		httpapi.WriteProblem(w, http.StatusConflict, "idempotency_in_progress", "a request with this Idempotency-Key just finished; retry")
		return
	}
	if err != nil {
		s.unavailable(w, err)
		return
	}
	prev, err := decodeRecord(raw)
	if err != nil {
		s.unavailable(w, err)
		return
	}
	switch {
	case prev.Fingerprint != fp:
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key was used with a different request; use a new key for a new request",
			httpapi.FieldError{Field: "header:Idempotency-Key", Reason: "already used with another method, path or body"})
	case !prev.Done:
		httpapi.RetryAfter(w, time.Second)
		httpapi.WriteProblem(w, http.StatusConflict, "idempotency_in_progress", "a request with this Idempotency-Key is still being processed")
	default:
		if prev.ContentType != "" {
			w.Header().Set("Content-Type", prev.ContentType)
		}
		w.Header().Set(ReplayedHeader, "true")
		w.WriteHeader(prev.Status)
		_, _ = w.Write(prev.Body)
	}
}

// decodeRecord reads a stored record. A finished one must hold an answer
// Middleware stores (a status from 200 to 499): replaying another would
// panic in WriteHeader or answer what no request answered.
func decodeRecord(raw []byte) (record, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return record{}, fmt.Errorf("idempotency record: %w", err)
	}
	if rec.Done && (rec.Status < 200 || rec.Status > 499) {
		return record{}, fmt.Errorf("idempotency record: status %d is not a stored answer", rec.Status)
	}
	return rec, nil
}

func (s *Store) unavailable(w http.ResponseWriter, err error) {
	s.log.Error("idempotency store unavailable", "err", err)
	httpapi.RetryAfter(w, 2*time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "idempotency_unavailable",
		"the request was not executed: its Idempotency-Key could not be checked; retry")
}

// redisKey scopes a client's key to its tenant and client.
func redisKey(ctx context.Context, key string) string {
	owner := ""
	if p, ok := auth.FromContext(ctx); ok {
		owner = p.Tenant + ":" + p.ClientID
	} else if t, ok := tenant.From(ctx); ok {
		owner = t + ":"
	}
	sum := sha256.Sum256([]byte(key))
	return "idem:" + owner + ":" + hex.EncodeToString(sum[:16])
}

func fingerprint(r *http.Request, body []byte) string {
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+"\n")
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
