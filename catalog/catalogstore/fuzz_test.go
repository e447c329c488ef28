package catalogstore

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzFastDecode checks fastDecode against encoding/json on arbitrary
// documents of the four bulk kinds: what the fast path accepts, encoding/json
// accepts with the same value; and decodeDoc (fast path or not) agrees with
// encoding/json on acceptance and value.
func FuzzFastDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":"k","customer":"c","basic_contract":"b","service":"s","parent":"","start_date":"2026-01-01","end_date":"2026-12-31","quantity":1,"attributes":{"a":"b"},"cancelled":false,"plans":[{"plan":"p","start_date":"2026-01-01","end_date":null}]}`,
		`{"id":"b","customer":"c","start_date":"2026-01-01","currency":"JPY","closing_day":31,"time_zone":"Asia/Tokyo","rounding":"half_up"}`,
		`{"id":"d","customer":"c","service":"s","discount_table":"t","start_date":"2026-01-01","order":-3,"cancelled":true,"scope":{"level":"service","target":"x"}}`,
		`{"id":"c","status":"active","attributes":null,"personal":{"name":"日本","address":"","phone":"","email":"a@b"}}`,
		`{"id":"k","start_date":"2026-02-30","plans":[]}`,
		`{"id":"k","quantity":01,"plans":[]}`,
		`{"id":"k","plans":[],"plans":[{"plan":"p","start_date":"2026-01-01"}]}`,
		`{"ID":"k","attributes":{"a":"b"},"attributes":{"c":"d"}}`,
		` { "id" : "k\u00e9" } `,
		`{"id":"c","attributes":{"a":"b"},"attributes":{"c":"d"}}`,
		`{"id":"k","plans":[{"plan":"a","start_date":"2026-01-01"}],"plans":[{"plan":"b","start_date":"2026-01-01"}]}`,
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(2))
		f.Add([]byte(s), uint8(3))
	}
	kinds := []Kind{KindServiceContract, KindBasicContract, KindDiscountContract, KindCustomer}
	f.Fuzz(func(t *testing.T, doc []byte, kind uint8) {
		k := kinds[int(kind)%len(kinds)]
		want := k.New()
		jerr := json.Unmarshal(doc, want)
		fast := k.New()
		if fastDecode(doc, fast) {
			if jerr != nil {
				t.Fatalf("%s %q: fast path accepts, encoding/json: %v", k, doc, jerr)
			}
			if !reflect.DeepEqual(fast, want) {
				t.Fatalf("%s %q: fast %+v, encoding/json %+v", k, doc, fast, want)
			}
		}
		got, err := decodeDoc(k, doc)
		switch {
		case (err == nil) != (jerr == nil):
			t.Fatalf("%s %q: decodeDoc %v, encoding/json %v", k, doc, err, jerr)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("%s %q: decodeDoc %+v, encoding/json %+v", k, doc, got, want)
		}
	})
}
