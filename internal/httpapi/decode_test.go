package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeStrict(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	tests := []struct {
		in       string
		optional bool
		ok       bool
		fields   []string // every field named, in body order
	}{
		{`{"name":"a","n":1}`, false, true, nil},
		{``, true, true, nil},
		{` `, true, true, nil},
		{``, false, false, nil},
		{`{"name":"a","colour":"red"}`, false, false, []string{"colour"}},
		{`{"n":"one"}`, true, false, []string{"n"}},
		{`{"name":5,"n":"one","colour":"red"}`, false, false, []string{"name", "n", "colour"}},
		{`{"name":"a"} {"name":"b"}`, false, false, nil},
		{`{"name":`, true, false, nil},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		var b body
		ok := DecodeStrict(rec, httptest.NewRequest("POST", "/", strings.NewReader(tt.in)), &b, tt.optional)
		if ok != tt.ok {
			t.Errorf("%q (optional %v): ok %v, want %v", tt.in, tt.optional, ok, tt.ok)
			continue
		}
		if ok {
			continue
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != 400 || p.Code != "invalid_body" {
			t.Errorf("%q: %d %s", tt.in, rec.Code, rec.Body)
		}
		if tt.fields == nil {
			continue
		}
		var got []string
		for _, e := range p.Errors {
			got = append(got, e.Field)
		}
		if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
			t.Errorf("%q: errors %+v, want fields %v", tt.in, p.Errors, tt.fields)
		}
	}
}
