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
		field    string
	}{
		{`{"name":"a","n":1}`, false, true, ""},
		{``, true, true, ""},
		{``, false, false, ""},
		{`{"name":"a","colour":"red"}`, false, false, "colour"},
		{`{"n":"one"}`, true, false, "n"},
		{`{"name":"a"} {"name":"b"}`, false, false, ""},
		{`{"name":`, true, false, ""},
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
		if tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.field) {
			t.Errorf("%q: errors %+v, want field %s", tt.in, p.Errors, tt.field)
		}
	}
}
