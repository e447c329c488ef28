package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode reads arbitrary catalogue files (YAML or JSON). No panic; a
// file that decodes writes JSON that decodes to a catalogue writing the
// same JSON again (a file survives `kakin catalog export` and import); a
// file that does not decode gives an error and no catalogue.
func FuzzDecode(f *testing.F) {
	for _, path := range []string{"../deploy/demo/catalogue.yaml", "../deploy/demo/rate-example.yaml"} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"Tenant: acme\nrate_tables:\n  - code: rt\n    versions: [{valid_from: \"2026-04-01T00:00:00+09:00\", model: per_unit, unit_price: \"0.10\"}]\n",
		`{"tenant":"acme","elements":[{"code":"e","versions":[{"valid_from":"2026-04-01T00:00:00Z","aggregation":"sum"}]}]}`,
		"a: &x [1, 2]\nb: *x\n",
		"services: [{code: s, versions: [{valid_from: 2026-04-01}]}]\n",
		"rate_tables: [{code: r, versions: [{unit_price: 0x10}]}]\n",
		"? [a]\n: b\n",
		"1: x\n",
		"---\n---\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(bytes.NewReader(data))
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a catalogue", err)
			}
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("decoded catalogue does not encode: %v", err)
		}
		again, err := Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%q decoded; its JSON %s does not: %v", data, out, err)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("%q: JSON %s decodes to JSON %s", data, out, out2)
		}
	})
}

// FuzzDecodeJSON checks DecodeJSON, which reads catalogue documents of the
// admin API, against encoding/json with DisallowUnknownFields: what
// encoding/json decodes cleanly, DecodeJSON decodes to the same value
// without error; what it refuses, DecodeJSON refuses, naming at least one
// problem when the data is one JSON value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"code":"rt","versions":[{"valid_from":"2026-04-01T00:00:00+09:00","model":"graduated","tiers":[{"up_to":"10","unit_price":"0.1"},{"unit_price":0.05}]}]}`,
		`{"code":"rt","versions":[{"valid_from":"2026-04-01","model":1,"colour":"red"}]}`,
		`{"id":"k","customer":"c","start_date":"2026-02-30","end_date":null,"plans":[{"plan":"p","start_date":"2026-01-01"}]}`,
		`{"id":"k","customer":"c","start_date":"2026-01-01","quantity":1e2,"attributes":{"a":"b"}}`,
		`{"code":"e","versions":[{"valid_from":"2026-04-01T00:00:00Z","valid_to":"2026-04-01T00:00:00Z"}]}`,
		`null`, `[]`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return new(RateTable) },
		func() any { return new(Element) },
		func() any { return new(ServiceContract) },
		func() any { return new(Catalogue) },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range targets {
			want := target()
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			jerr := dec.Decode(want)
			if jerr == nil {
				if _, end := dec.Token(); end != io.EOF {
					jerr = errors.New("more than one value")
				}
			}
			got := target()
			err := DecodeJSON(data, got)
			switch {
			case jerr == nil && err != nil:
				t.Fatalf("%T %q: encoding/json decodes it, DecodeJSON: %v", want, data, err)
			case jerr == nil && !reflect.DeepEqual(got, want):
				t.Fatalf("%T %q: DecodeJSON %+v, encoding/json %+v", want, data, got, want)
			case jerr != nil && err == nil:
				t.Fatalf("%T %q: encoding/json refuses it (%v), DecodeJSON does not", want, data, jerr)
			}
			var de *DecodeError
			if errors.As(err, &de) && len(de.Fields) == 0 {
				t.Fatalf("%T %q: a decode error naming no problem", want, data)
			}
		}
	})
}

// Aliases of aliases are refused once they expand beyond a bound, not
// written out to gigabytes.
func TestDecodeRefusesAliasBombs(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`a0: &a0 ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]` + "\n")
	for i := 1; i <= 9; i++ { // 64 GB written out
		fmt.Fprintf(&b, "a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err := YAMLToJSON(b.Bytes())
	if err == nil || !strings.Contains(err.Error(), "aliases expanded") {
		t.Fatalf("%d bytes of aliases: %v", b.Len(), err)
	}
}
