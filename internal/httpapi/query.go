package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// UnknownQuery returns an error for every parameter of q that is not one of
// known (the parameters a route understands), in name order. Each error
// names the parameter and lists the known ones, so that a misspelt or
// unsupported filter is refused rather than silently ignored.
func UnknownQuery(q url.Values, known ...string) []FieldError {
	var names []string
	for name := range q {
		if !slices.Contains(known, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	reason := "unknown query parameter; this route takes none"
	if len(known) > 0 {
		reason = "unknown query parameter; this route takes " + strings.Join(known, ", ")
	}
	out := make([]FieldError, len(names))
	for i, name := range names {
		out[i] = FieldError{Field: name, Reason: reason}
	}
	return out
}

// InvalidQuery answers 400 invalid_query naming each invalid query parameter.
func InvalidQuery(w http.ResponseWriter, errs ...FieldError) {
	WriteProblem(w, http.StatusBadRequest, "invalid_query", "the query parameters are invalid", errs...)
}

// KnownQuery reports whether every query parameter of r is one of known;
// otherwise it answers 400 invalid_query (UnknownQuery) and reports false.
// A query string that does not parse (a bad %-escape, a ';' separator) is
// refused too: r.URL.Query() would silently drop the pair, and with it a
// filter or a page size.
func KnownQuery(w http.ResponseWriter, r *http.Request, known ...string) bool {
	if r.URL.RawQuery == "" {
		return true
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		InvalidQuery(w, FieldError{Field: "query", Reason: "malformed query string: " + err.Error()})
		return false
	}
	if errs := UnknownQuery(q, known...); len(errs) > 0 {
		InvalidQuery(w, errs...)
		return false
	}
	return true
}
