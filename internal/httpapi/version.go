package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// VersionHeader selects a minor version of the v1 API on a request and is
// echoed on every response.
const VersionHeader = "Kakin-Version"

// The minor versions of /v1, oldest first. A request without the header gets
// the oldest, so clients written against it never see a change they did not
// ask for.
const (
	// V20261101 is the first version of /v1.
	V20261101 = "2026-11-01"
	// V20261201 lists only rejected records in a POST /v1/usage answer; the
	// accepted ones are counted, not listed (large batches answer in bytes
	// proportional to their errors, not their size).
	V20261201 = "2026-12-01"
	// V20270101 answers every list in one shape, Page: the array is named
	// items (it was named after what it lists: records, jobs, clients).
	V20270101 = "2027-01-01"
)

// Versions lists every supported minor version, oldest first.
var Versions = []string{V20261101, V20261201, V20270101}

type versionKey struct{}

// RequestVersion returns the minor version selected for the request.
func RequestVersion(ctx context.Context) string {
	if v, ok := ctx.Value(versionKey{}).(string); ok {
		return v
	}
	return Versions[0]
}

// AtLeast reports whether the request's version is v or newer.
func AtLeast(ctx context.Context, v string) bool {
	return slices.Index(Versions, RequestVersion(ctx)) >= slices.Index(Versions, v)
}

// WithVersion resolves the Kakin-Version header, answers 400 for an unknown
// version, and echoes the version in effect on the response.
func WithVersion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := strings.TrimSpace(r.Header.Get(VersionHeader))
		if v == "" {
			v = Versions[0]
		}
		if !slices.Contains(Versions, v) {
			w.Header().Set(VersionHeader, Versions[len(Versions)-1])
			WriteProblem(w, http.StatusBadRequest, "unsupported_version",
				"Kakin-Version "+v+" is not supported; supported versions: "+strings.Join(Versions, ", "),
				FieldError{Field: "header:Kakin-Version", Reason: "must be one of " + strings.Join(Versions, ", ")})
			return
		}
		w.Header().Set(VersionHeader, v)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, v)))
	})
}
