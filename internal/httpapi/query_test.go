package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
)

func TestUnknownQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		known []string
		want  []FieldError
	}{
		{"none given", "", []string{"a"}, nil},
		{"all known", "a=1&b=2&a=3", []string{"a", "b"}, nil},
		{"one unknown", "a=1&contract=k", []string{"a", "b"},
			[]FieldError{{Field: "contract", Reason: "unknown query parameter; this route takes a, b"}}},
		{"several, in name order", "z=1&y&a=1", []string{"a"}, []FieldError{
			{Field: "y", Reason: "unknown query parameter; this route takes a"},
			{Field: "z", Reason: "unknown query parameter; this route takes a"}}},
		{"a route without parameters", "pageSize=5", nil,
			[]FieldError{{Field: "pageSize", Reason: "unknown query parameter; this route takes none"}}},
		{"names are case-sensitive", "Customer=c", []string{"customer"},
			[]FieldError{{Field: "Customer", Reason: "unknown query parameter; this route takes customer"}}},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := UnknownQuery(q, tt.known...); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestKnownQuery(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"/v1/x", true},
		{"/v1/x?", true},
		{"/v1/x?period=2026-03", true},
		{"/v1/x?period=2026-03&contract=k", false},
		{"/v1/x?&", true},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		ok := KnownQuery(rec, httptest.NewRequest("GET", tt.target, nil), "period")
		if ok != tt.ok {
			t.Errorf("%s: %v, want %v", tt.target, ok, tt.ok)
		}
		if ok {
			if rec.Body.Len() != 0 {
				t.Errorf("%s: accepted but answered %s", tt.target, rec.Body)
			}
			continue
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusBadRequest || p.Code != "invalid_query" ||
			rec.Header().Get("Content-Type") != "application/problem+json" || len(p.Errors) != 1 || p.Errors[0].Field != "contract" {
			t.Errorf("%s: %d %s", tt.target, rec.Code, rec.Body)
		}
	}
}

func TestWriteList(t *testing.T) {
	type legacyPage struct {
		Records  []string `json:"records"`
		NextPage string   `json:"nextPage,omitempty"`
	}
	tests := []struct {
		version string
		items   []string
		next    string
		want    string
	}{
		{"", []string{"a"}, "n", `{"records":["a"],"nextPage":"n"}`},
		{V20261201, []string{}, "", `{"records":[]}`},
		{V20270101, []string{"a", "b"}, "n", `{"items":["a","b"],"nextPage":"n"}`},
		{V20270101, nil, "", `{"items":[]}`},
	}
	for _, tt := range tests {
		h := WithVersion(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteList(w, r, tt.items, tt.next, legacyPage{Records: tt.items, NextPage: tt.next})
		}))
		req := httptest.NewRequest("GET", "/v1/x", nil)
		if tt.version != "" {
			req.Header.Set(VersionHeader, tt.version)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Body.String(); rec.Code != 200 || got != tt.want+"\n" {
			t.Errorf("version %q: %d %s, want %s", tt.version, rec.Code, got, tt.want)
		}
	}
}
