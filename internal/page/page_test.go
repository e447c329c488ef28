package page

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseAndNext(t *testing.T) {
	c := NewCodec([]byte("secret"), 100)
	scope := Scope("acme", "/v1/things", "customer=c1")
	req, errs := c.Parse(url.Values{}, scope)
	if len(errs) > 0 || req.Size != DefaultSize || req.After != nil {
		t.Fatalf("first page %+v %v", req, errs)
	}
	if tok := c.Next(req, false, "k9"); tok != "" {
		t.Errorf("last page got nextPage %q", tok)
	}
	req, _ = c.Parse(url.Values{"pageSize": {"25"}}, scope)
	tok := c.Next(req, true, "k9", "2")
	next, errs := c.Parse(url.Values{"nextPage": {tok}}, scope)
	if len(errs) > 0 || next.Size != 25 || strings.Join(next.After, ",") != "k9,2" {
		t.Fatalf("next page %+v %v", next, errs)
	}
}

func TestParseRejects(t *testing.T) {
	c := NewCodec([]byte("secret"), 100)
	scope := Scope("acme", "/v1/things")
	good := c.Next(Request{Size: 10, scope: scope}, true, "k1")
	other := NewCodec([]byte("other secret"), 100).Next(Request{Size: 10, scope: scope}, true, "k1")
	flip := []byte(good)
	flip[3] ^= 1
	tests := []struct {
		name  string
		q     url.Values
		scope string
		field string
	}{
		{"size zero", url.Values{"pageSize": {"0"}}, scope, "pageSize"},
		{"size over max", url.Values{"pageSize": {"101"}}, scope, "pageSize"},
		{"size not a number", url.Values{"pageSize": {"ten"}}, scope, "pageSize"},
		{"tampered payload", url.Values{"nextPage": {string(flip)}}, scope, "nextPage"},
		{"truncated", url.Values{"nextPage": {good[:len(good)-3]}}, scope, "nextPage"},
		{"no signature", url.Values{"nextPage": {strings.Split(good, ".")[0]}}, scope, "nextPage"},
		{"other key", url.Values{"nextPage": {other}}, scope, "nextPage"},
		{"other tenant", url.Values{"nextPage": {good}}, Scope("beta", "/v1/things"), "nextPage"},
		{"other filters", url.Values{"nextPage": {good}}, Scope("acme", "/v1/things", "customer=c2"), "nextPage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := c.Parse(tt.q, tt.scope)
			if len(errs) != 1 || errs[0].Field != tt.field {
				t.Fatalf("errors %+v, want one on %s", errs, tt.field)
			}
		})
	}
}

func TestScopeIsUnambiguous(t *testing.T) {
	if Scope("a", "b", "cd") == Scope("a", "bc", "d") {
		t.Error("scopes of different filters collide")
	}
}
