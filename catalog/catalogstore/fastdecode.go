package catalogstore

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/money"
)

func moneyMode(s string) money.Mode { return money.Mode(s) }

// A replica decodes millions of contract and customer documents when it
// loads; encoding/json spends about 4 µs on each. The documents are written
// by this package with encoding/json, so their shape is known: fastDecode
// reads the four bulk kinds directly, and hands anything it does not
// recognise (an unknown key, an unexpected type, an escape it does not
// handle, a byte that is not valid UTF-8) to encoding/json.
// TestFastDecodeMatchesEncodingJSON and
// TestFastDecodeDifferentialTrickyStrings keep the two equal.

var errSlow = errors.New("not on the fast path")

// fastDecode decodes doc into v when v is one of the bulk kinds, reporting
// false when encoding/json must do it.
func fastDecode(doc []byte, v any) bool {
	d := &lexer{b: doc}
	var err error
	switch x := v.(type) {
	case *catalog.ServiceContract:
		err = d.serviceContract(x)
	case *catalog.BasicContract:
		err = d.basicContract(x)
	case *catalog.DiscountContract:
		err = d.discountContract(x)
	case *catalog.Customer:
		err = d.customer(x)
	default:
		return false
	}
	if err == nil {
		d.ws()
		if d.i != len(d.b) {
			err = errSlow
		}
	}
	return err == nil
}

type lexer struct {
	b []byte
	i int
}

func (d *lexer) ws() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\n' || d.b[d.i] == '\t' || d.b[d.i] == '\r') {
		d.i++
	}
}

func (d *lexer) byte(c byte) error {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != c {
		return errSlow
	}
	d.i++
	return nil
}

// object calls field for each key of an object; field reads the value.
func (d *lexer) object(field func(key []byte) error) error {
	if err := d.byte('{'); err != nil {
		return err
	}
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return nil
	}
	for {
		key, err := d.rawString()
		if err != nil {
			return err
		}
		if err := d.byte(':'); err != nil {
			return err
		}
		d.ws()
		if err := field(key); err != nil {
			return err
		}
		d.ws()
		if d.i >= len(d.b) {
			return errSlow
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			return nil
		default:
			return errSlow
		}
	}
}

// rawString reads a string without escapes (keys, codes, dates) that is
// valid UTF-8 as it stands; anything with a backslash, and any byte that is
// not part of a valid UTF-8 sequence (encoding/json replaces each with
// U+FFFD), goes the slow way.
func (d *lexer) rawString() ([]byte, error) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, errSlow
	}
	start := d.i + 1
	for j := start; j < len(d.b); {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return d.b[start:j], nil
		case c == '\\' || c < 0x20:
			return nil, errSlow
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(d.b[j:])
			if r == utf8.RuneError && size == 1 {
				return nil, errSlow
			}
			j += size
		}
	}
	return nil, errSlow
}

func (d *lexer) str() (string, error) {
	s, err := d.rawString()
	return string(s), err
}

func (d *lexer) integer() (int, error) {
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i-digits > 1 && d.b[digits] == '0' {
		return 0, errSlow // 01 is not JSON: encoding/json refuses it
	}
	n, err := strconv.Atoi(string(d.b[start:d.i]))
	if err != nil {
		return 0, errSlow
	}
	return n, nil
}

func (d *lexer) boolean() (bool, error) {
	d.ws()
	switch {
	case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
		d.i += 4
		return true, nil
	case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
		d.i += 5
		return false, nil
	}
	return false, errSlow
}

// date reads "YYYY-MM-DD" as catalog.Date does, refusing what it refuses.
func (d *lexer) date() (catalog.Date, error) {
	s, err := d.rawString()
	if err != nil || len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return catalog.Date{}, errSlow
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, m, dd := num(s[:4]), num(s[5:7]), num(s[8:])
	if y < 0 || m < 1 || m > 12 || dd < 1 || dd > 31 {
		return catalog.Date{}, errSlow
	}
	if t := time.Date(y, time.Month(m), dd, 0, 0, 0, 0, time.UTC); t.Day() != dd {
		return catalog.Date{}, errSlow // 2026-02-30
	}
	return catalog.Date{Year: y, Month: time.Month(m), Day: dd}, nil
}

func (d *lexer) datePtr() (*catalog.Date, error) {
	dt, err := d.date()
	if err != nil {
		return nil, err
	}
	return &dt, nil
}

// raw returns the next value's bytes for encoding/json (maps).
func (d *lexer) raw() ([]byte, error) {
	d.ws()
	start := d.i
	depth := 0
	inStr := false
	for ; d.i < len(d.b); d.i++ {
		c := d.b[d.i]
		switch {
		case inStr:
			if c == '\\' {
				d.i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				d.i++
				return d.b[start:d.i], nil
			}
		}
	}
	return nil, errSlow
}

func (d *lexer) attrs() (map[string]string, error) {
	raw, err := d.raw()
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errSlow
	}
	return m, nil
}

func (d *lexer) serviceContract(c *catalog.ServiceContract) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "id":
			c.ID, err = d.str()
		case "customer":
			c.Customer, err = d.str()
		case "basic_contract":
			c.Basic, err = d.str()
		case "service":
			c.Service, err = d.str()
		case "parent":
			c.Parent, err = d.str()
		case "label":
			c.Label, err = d.str()
		case "start_date":
			c.Start, err = d.date()
		case "end_date":
			c.End, err = d.datePtr()
		case "quantity":
			c.Quantity, err = d.integer()
		case "attributes":
			if c.Attributes != nil {
				return errSlow // a repeated key: encoding/json merges the maps
			}
			c.Attributes, err = d.attrs()
		case "cancelled":
			c.Cancelled, err = d.boolean()
		case "plans":
			if c.Plans != nil {
				return errSlow // a repeated key: encoding/json reuses the first array
			}
			if err = d.byte('['); err != nil {
				return err
			}
			d.ws()
			if d.i < len(d.b) && d.b[d.i] == ']' {
				d.i++
				c.Plans = []catalog.PricePlanTerm{}
				return nil
			}
			for {
				var p catalog.PricePlanTerm
				if err := d.object(func(key []byte) (err error) {
					switch string(key) {
					case "plan":
						p.Plan, err = d.str()
					case "start_date":
						p.Start, err = d.date()
					case "end_date":
						p.End, err = d.datePtr()
					default:
						err = errSlow
					}
					return err
				}); err != nil {
					return err
				}
				c.Plans = append(c.Plans, p)
				d.ws()
				if d.i < len(d.b) && d.b[d.i] == ',' {
					d.i++
					continue
				}
				return d.byte(']')
			}
		default:
			err = errSlow
		}
		return err
	})
}

func (d *lexer) basicContract(c *catalog.BasicContract) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "id":
			c.ID, err = d.str()
		case "customer":
			c.Customer, err = d.str()
		case "start_date":
			c.Start, err = d.date()
		case "end_date":
			c.End, err = d.datePtr()
		case "currency":
			c.Currency, err = d.str()
		case "closing_day":
			c.ClosingDay, err = d.integer()
		case "time_zone":
			c.TimeZone, err = d.str()
		case "rounding":
			var s string
			s, err = d.str()
			c.Rounding = moneyMode(s)
		case "billing_period":
			var s string
			s, err = d.str()
			c.BillingPeriod = catalog.BillingPeriod(s)
		case "week_start":
			c.WeekStart, err = d.str()
		default:
			err = errSlow
		}
		return err
	})
}

func (d *lexer) discountContract(c *catalog.DiscountContract) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "id":
			c.ID, err = d.str()
		case "customer":
			c.Customer, err = d.str()
		case "service":
			c.Service, err = d.str()
		case "discount_table":
			c.DiscountTable, err = d.str()
		case "start_date":
			c.Start, err = d.date()
		case "end_date":
			c.End, err = d.datePtr()
		case "order":
			c.Order, err = d.integer()
		case "cancelled":
			c.Cancelled, err = d.boolean()
		case "scope":
			err = d.object(func(key []byte) (err error) {
				switch string(key) {
				case "level":
					c.Scope.Level, err = d.str()
				case "target":
					c.Scope.Target, err = d.str()
				default:
					err = errSlow
				}
				return err
			})
		default:
			err = errSlow
		}
		return err
	})
}

func (d *lexer) customer(c *catalog.Customer) error {
	return d.object(func(key []byte) (err error) {
		switch string(key) {
		case "id":
			c.ID, err = d.str()
		case "status":
			c.Status, err = d.str()
		case "attributes":
			if c.Attributes != nil {
				return errSlow // a repeated key: encoding/json merges the maps
			}
			c.Attributes, err = d.attrs()
		case "personal":
			err = d.object(func(key []byte) (err error) {
				switch string(key) {
				case "name":
					c.Personal.Name, err = d.str()
				case "address":
					c.Personal.Address, err = d.str()
				case "phone":
					c.Personal.Phone, err = d.str()
				case "email":
					c.Personal.Email, err = d.str()
				default:
					err = errSlow
				}
				return err
			})
		default:
			err = errSlow
		}
		return err
	})
}
