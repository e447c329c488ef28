package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// fuzzEmbedded is promoted into fuzzDoc, as encoding/json does it.
type fuzzEmbedded struct {
	E string `json:"e"`
}

type fuzzNamed string

// fuzzDoc has a field of every kind the walk handles itself or hands to
// encoding/json.
type fuzzDoc struct {
	doc
	fuzzEmbedded
	P     *string        `json:"p"`
	PP    **int          `json:"pp"`
	U     uint8          `json:"u"`
	F     float64        `json:"f"`
	Named fuzzNamed      `json:"named"`
	Nums  map[string]int `json:"nums"`
	Any   any            `json:"any"`
	Arr   [2]int         `json:"arr"`
	Bytes []byte         `json:"bytes"`
	Inner *tier          `json:"inner"`
	Deep  [][]version    `json:"deep"`
	IntKe map[int]string `json:"int_keys"`
}

// fuzzTargets are the types each document is decoded into.
var fuzzTargets = []func() any{
	func() any { return new(fuzzDoc) },
	func() any { return new(doc) },
	func() any { return new(map[string]any) },
	func() any { return new([]version) },
	func() any { return new(string) },
	func() any { return new(*int) },
}

// FuzzWalk checks Walk and Decode against encoding/json with
// DisallowUnknownFields: when encoding/json decodes a document (one JSON
// value) cleanly, Decode returns nil and Walk, which does not ask
// encoding/json first, gives the same value; when encoding/json refuses it,
// Decode returns an error.
func FuzzWalk(f *testing.F) {
	for _, s := range []string{
		`{"code":"a","closing_day":3,"versions":[{"valid_from":"2026-01-01T00:00:00+09:00","valid_to":null,"tiers":[{"up_to":"10","unit_price":0.5}]}]}`,
		`{"CODE":"case-insensitive","attributes":null,"versions":null}`,
		`null`, `"plain"`, `"esc\u00e9\n"`, `3`, `[]`, `{}`,
		` { "code" : "}{\"][" , "attr\u0069butes" : { "a\"b]" : "x]}" } ,"versions":[ {"tiers":[ ]} , {} ] } `,
		`{"e":"x","p":"y","pp":3,"u":255,"f":1e300,"named":"n","nums":{"a":1},"any":[1,{"b":null}],"arr":[1,2],"bytes":"AQI=","inner":{"unit_price":"1.5"},"deep":[[{"model":"m"}]],"int_keys":{"1":"a"}}`,
		`{"u":256,"pp":"x","arr":[1,2,3],"bytes":"!","nums":{"a":1.5},"unknown":1}`,
		`{"code":"a","code":"b","versions":[{"model":"x"}],"versions":[{"tiers":[{}]}]}`,
		`{"Untagged":"u","untagged":"v","Hidden":"h","-":"dash"}`,
		`{"code":"` + "\xff" + `"}`,
		`{"closing_day":-0,"f":-0.0e-0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range fuzzTargets {
			want := target()
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			err := dec.Decode(want)
			if err == nil {
				if _, end := dec.Token(); end != io.EOF {
					err = errors.New("more than one value")
				}
			}
			viaDecode := target()
			derr := Decode(data, viaDecode)
			if (err == nil) != (derr == nil) {
				t.Fatalf("%T %q: encoding/json %v, Decode %v", want, data, err, derr)
			}
			if err != nil {
				continue
			}
			if !reflect.DeepEqual(viaDecode, want) {
				t.Fatalf("%T %q: Decode\n %#v\nencoding/json\n %#v", want, data, viaDecode, want)
			}
			got := target()
			if werr := Walk(data, got); werr != nil {
				t.Fatalf("%T %q: encoding/json accepts it, Walk: %v", want, data, werr)
			}
			if !reflect.DeepEqual(got, want) && !repeatsKey(data) {
				t.Fatalf("%T %q: Walk\n %#v\nencoding/json\n %#v", want, data, got, want)
			}
		}
	})
}

// repeatsKey reports whether an object of the (valid) document has two keys
// that encoding/json would match to one field (equal but for case).
func repeatsKey(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   []string
		key    bool // the next token of an object is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				if n > 1 && stack[n-2].object {
					stack[n-2].key = true
				}
				continue
			}
			k := tok.(string)
			for _, seen := range stack[n-1].keys {
				if strings.EqualFold(seen, k) {
					return true
				}
			}
			stack[n-1].keys = append(stack[n-1].keys, k)
			stack[n-1].key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].key = true // a value ended: a key or '}' follows
		}
	}
}
