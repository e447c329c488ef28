package catalogstore

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	gotime "time"

	"github.com/kakin-dev/kakin/catalog"
)

// randomDoc builds a document of one of the bulk kinds with random fields.
func randomDoc(r *rand.Rand) any {
	str := func() string {
		alphabet := []string{"a", "B", "7", "-", "_", ".", ":", "日", "本", " ", "é"}
		if r.IntN(20) == 0 {
			alphabet = append(alphabet, `"`, `\`, "\n", "<", "\u2028") // escapes: the slow path
		}
		s := ""
		for n := r.IntN(12); n > 0; n-- {
			s += alphabet[r.IntN(len(alphabet))]
		}
		return s
	}
	day := func() catalog.Date {
		return catalog.Date{Year: 2000 + r.IntN(50), Month: 1 + gotime.Month(r.IntN(12)), Day: 1 + r.IntN(28)}
	}
	dayPtr := func() *catalog.Date {
		if r.IntN(2) == 0 {
			return nil
		}
		d := day()
		return &d
	}
	attrs := func() map[string]string {
		if r.IntN(3) == 0 {
			return nil
		}
		m := map[string]string{}
		for n := r.IntN(4); n >= 0; n-- {
			m[str()+"k"] = str()
		}
		return m
	}
	switch r.IntN(4) {
	case 0:
		c := &catalog.ServiceContract{ID: str(), Customer: str(), Basic: str(), Service: str(), Parent: str(),
			DateRange: catalog.DateRange{Start: day(), End: dayPtr()}, Quantity: r.IntN(5) - 1, Attributes: attrs(),
			Cancelled: r.IntN(2) == 0, Plans: []catalog.PricePlanTerm{}}
		for n := r.IntN(4); n > 0; n-- {
			c.Plans = append(c.Plans, catalog.PricePlanTerm{Plan: str(), DateRange: catalog.DateRange{Start: day(), End: dayPtr()}})
		}
		return c
	case 1:
		return &catalog.BasicContract{ID: str(), Customer: str(), DateRange: catalog.DateRange{Start: day(), End: dayPtr()},
			Currency: str(), ClosingDay: r.IntN(29), TimeZone: str(), Rounding: "half_up",
			BillingPeriod: catalog.BillingPeriod([]string{"", "weekly", "daily"}[r.IntN(3)]), WeekStart: []string{"", "sunday"}[r.IntN(2)]}
	case 2:
		return &catalog.DiscountContract{ID: str(), Customer: str(), Service: str(), DiscountTable: str(),
			DateRange: catalog.DateRange{Start: day(), End: dayPtr()}, Scope: catalog.DiscountScope{Level: str(), Target: str()},
			Order: r.IntN(10) - 3, Cancelled: r.IntN(2) == 0}
	default:
		return &catalog.Customer{ID: str(), Status: str(), Attributes: attrs(),
			Personal: catalog.Personal{Name: str(), Address: str(), Phone: str(), Email: str()}}
	}
}

// The fast decoder reads every document encoding/json writes exactly as
// encoding/json reads it.
func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for i := 0; i < 20000; i++ {
		doc := randomDoc(r)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		want := reflect.New(reflect.TypeOf(doc).Elem()).Interface()
		if err := json.Unmarshal(b, want); err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(doc).Elem()).Interface()
		if fastDecode(b, got) {
			fast++
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fast decode of %s:\n got %+v\nwant %+v", b, got, want)
			}
		}
		viaDoc, err := decodeDoc(kindOf(doc), b)
		if err != nil || !reflect.DeepEqual(viaDoc, want) {
			t.Fatalf("decodeDoc of %s: %+v %v", b, viaDoc, err)
		}
	}
	if fast < 15000 {
		t.Errorf("only %d of 20000 documents took the fast path", fast)
	}
}

func kindOf(v any) Kind {
	switch v.(type) {
	case *catalog.ServiceContract:
		return KindServiceContract
	case *catalog.BasicContract:
		return KindBasicContract
	case *catalog.DiscountContract:
		return KindDiscountContract
	}
	return KindCustomer
}

// What encoding/json refuses, decodeDoc refuses; what only the fast path
// cannot read, encoding/json reads.
func TestFastDecodeFallsBack(t *testing.T) {
	for _, tt := range []struct {
		doc    string
		ok     bool
		expect string
	}{
		{`{"id":"k","start_date":"2026-02-30","plans":[]}`, false, ""},
		{`{"id":"k","start_date":"2026-1-01","plans":[]}`, false, ""},
		{`{"id":"k","start_date":"2026-01-01","quantity":1.5,"plans":[]}`, false, ""},
		{`{"id":"k","start_date":"2026-01-01","plans":[],"colour":"red"}`, true, "k"}, // encoding/json ignores unknown keys
		{`{"ID":"k","start_date":"2026-01-01","plans":null}`, true, "k"},              // case-insensitive keys, null
		{`{"id":"k\u00e9","start_date":"2026-01-01","plans":[]}`, true, "ké"},
		{` { "id" : "k" , "start_date" : "2026-01-01" , "plans" : [ ] } `, true, "k"},
	} {
		v, err := decodeDoc(KindServiceContract, []byte(tt.doc))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v, want ok %v", tt.doc, err, tt.ok)
			continue
		}
		if tt.ok && v.(*catalog.ServiceContract).ID != tt.expect {
			t.Errorf("%s: id %q", tt.doc, v.(*catalog.ServiceContract).ID)
		}
	}
}

// The fast decoder agrees with encoding/json on strings encoding/json itself
// would never write: invalid UTF-8 (encoding/json replaces each invalid byte
// with U+FFFD), escapes, surrogates (paired, lone, reversed) and \u0000, in
// every kind of string the fast path reads (ids, codes, dates, nested
// objects, attribute keys and values, unknown keys). decodeDoc, and
// fastDecode whenever it takes a document, must give what json.Unmarshal
// gives; a document json.Unmarshal refuses decodeDoc refuses too.
func TestFastDecodeDifferentialTrickyStrings(t *testing.T) {
	literals := []struct {
		name string
		lit  string // the JSON string literal, quotes included, bytes as written
	}{
		{"plain", `"abc"`},
		{"empty", `""`},
		{"truncated 4-byte sequence", "\"\xf0\""},
		{"truncated 4-byte sequence inside", "\"a\xf0b\""},
		{"0xff", "\"a\xffb\""},
		{"lone continuation byte", "\"\x80\""},
		{"overlong slash", "\"\xc0\xaf\""},
		{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\""},
		{"above U+10FFFF", "\"\xf4\x90\x80\x80\""},
		{"truncated 3-byte sequence after valid text", "\"日本\xe6\x97\""},
		{"valid multibyte", `"日本語 é 😀"`},
		{"raw U+2028 and U+2029", "\"a\u2028b\u2029c\""},
		{"DEL", "\"a\x7fb\""},
		{"quote and backslash escapes", `"a\"b\\c\/d"`},
		{"control escapes", `"\b\f\n\r\t"`},
		{"unicode escape", `"k\u00e9"`},
		{"upper-case unicode escape", `"k\u00E9"`},
		{"NUL escape", `"a\u0000b"`},
		{"surrogate pair", `"\ud83d\ude00"`},
		{"lone high surrogate", `"\ud83d"`},
		{"lone low surrogate", `"\ude00"`},
		{"high surrogate then text", `"\ud83dx"`},
		{"high surrogate then non-surrogate escape", `"\ud83d\u0041"`},
		{"reversed surrogate pair", `"\ude00\ud83d"`},
		{"escape then invalid UTF-8", "\"\\n\xf0\""},
		{"escaped U+FFFD", `"\ufffd"`},
		{"raw U+FFFD", "\"\xef\xbf\xbd\""},
		// Not JSON: both must refuse.
		{"raw control character", "\"a\x01b\""},
		{"raw newline", "\"a\nb\""},
		{"raw tab", "\"a\tb\""},
		{"unknown escape", `"a\xb"`},
		{"short unicode escape", `"\u12"`},
		{"non-hex unicode escape", `"\u12g4"`},
		{"unterminated", `"abc`},
	}
	docs := []struct {
		name string
		kind Kind
		tmpl string // @ is replaced by the literal
	}{
		{"service contract id", KindServiceContract, `{"id":@,"start_date":"2026-01-01","plans":[]}`},
		{"service contract codes", KindServiceContract,
			`{"id":"k","customer":@,"basic_contract":@,"service":@,"parent":@,"start_date":"2026-01-01","plans":[{"plan":@,"start_date":"2026-01-01"}]}`},
		{"service contract date", KindServiceContract, `{"id":"k","start_date":@,"plans":[]}`},
		{"service contract attribute value", KindServiceContract, `{"id":"k","start_date":"2026-01-01","attributes":{"a":@},"plans":[]}`},
		{"service contract attribute key", KindServiceContract, `{"id":"k","start_date":"2026-01-01","attributes":{@:"v"},"plans":[]}`},
		{"service contract unknown key", KindServiceContract, `{"id":"k",@:"x","start_date":"2026-01-01","plans":[]}`},
		{"basic contract", KindBasicContract,
			`{"id":@,"customer":@,"start_date":"2026-01-01","currency":@,"closing_day":0,"time_zone":@,"rounding":"half_up","billing_period":@,"week_start":@}`},
		{"discount contract", KindDiscountContract,
			`{"id":@,"customer":@,"service":@,"discount_table":@,"start_date":"2026-01-01","scope":{"level":@,"target":@},"order":1}`},
		{"customer", KindCustomer, `{"id":@,"status":@,"attributes":{"a":@},"personal":{"name":@,"address":@,"phone":@,"email":@}}`},
		{"customer nested key", KindCustomer, `{"id":"c","personal":{@:"x","name":"n"}}`},
	}
	for _, d := range docs {
		for _, l := range literals {
			t.Run(d.name+"/"+l.name, func(t *testing.T) {
				doc := []byte(strings.ReplaceAll(d.tmpl, "@", l.lit))
				want := d.kind.New()
				wantErr := json.Unmarshal(doc, want)
				if fast := d.kind.New(); fastDecode(doc, fast) {
					if wantErr != nil {
						t.Fatalf("fastDecode took %q, which encoding/json refuses: %v", doc, wantErr)
					}
					if !reflect.DeepEqual(fast, want) {
						t.Errorf("fastDecode of %q:\n got %#v\nwant %#v", doc, fast, want)
					}
				}
				got, err := decodeDoc(d.kind, doc)
				switch {
				case (err == nil) != (wantErr == nil):
					t.Errorf("decodeDoc of %q: err %v, encoding/json err %v", doc, err, wantErr)
				case err == nil && !reflect.DeepEqual(got, want):
					t.Errorf("decodeDoc of %q:\n got %#v\nwant %#v", doc, got, want)
				}
			})
		}
	}
}
