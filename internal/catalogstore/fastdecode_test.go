package catalogstore

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	gotime "time"

	"github.com/kakin-dev/kakin/schemas/catalog"
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
			Currency: str(), ClosingDay: r.IntN(29), TimeZone: str(), Rounding: "half_up"}
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
