package schemas

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"
)

// The binary encoding of the records that travel between stages: UsageEvent
// on usage.raw and usage.accepted, RatedLine on usage.rated, Unrated on
// usage.unrated. JSON cost about six encodes and decodes per event on its way
// through the pipeline; this format is a fraction of that (BenchmarkWire).
//
// A binary value starts with WireMagic (0x00, which never starts a JSON
// document), then the format version (WireVersion) and the record's kind.
// Readers decide by the first byte: every Unmarshal function here also
// accepts the JSON of the same record, so messages written before, and
// records written by hand, stay readable. The fields follow in a fixed
// order: strings as a uvarint length and bytes; decimals exactly, as their
// coefficient and exponent (a varint when the coefficient fits 18 digits,
// otherwise its sign and big-endian magnitude); times as Unix seconds,
// nanoseconds and the zone's offset; maps as a count and key-value pairs in
// key order; an optional struct as a presence byte. A field added to one of
// these records must be added here under a new version (TestWireCoversEveryField
// fails until it is).
const (
	WireMagic   byte = 0x00
	WireVersion byte = 1
)

// Kinds of binary records (the third byte).
const (
	wireEvent   byte = 1
	wireRated   byte = 2
	wireUnrated byte = 3
)

// wireJSON makes the Marshal functions write JSON (SetWireJSON).
var wireJSON atomic.Bool

// SetWireJSON makes MarshalEvent, MarshalRatedLine and MarshalUnrated write
// JSON instead of the binary encoding (kakin --kafka-wire-json), for a
// rolling upgrade from a version whose readers take only JSON: run the new
// version with it until every process runs the new version, then without.
// A record JSON cannot hold (a time outside years 0-9999) is still written
// in the binary encoding. Set it once at start, before any stage runs.
func SetWireJSON(on bool) { wireJSON.Store(on) }

// asJSON is v as JSON when SetWireJSON asked for it and JSON can hold it.
func asJSON(v any) ([]byte, bool) {
	if !wireJSON.Load() {
		return nil, false
	}
	b, err := json.Marshal(v)
	return b, err == nil
}

// IsBinary reports whether a message value is in the binary encoding (not
// JSON).
func IsBinary(data []byte) bool { return len(data) > 0 && data[0] == WireMagic }

// MarshalEvent encodes e in the binary encoding (or JSON, SetWireJSON).
func MarshalEvent(e *UsageEvent) []byte {
	if b, ok := asJSON(e); ok {
		return b
	}
	b := make([]byte, 0, 128+16*len(e.Attributes))
	b = append(b, WireMagic, WireVersion, wireEvent)
	return appendEvent(b, e)
}

// UnmarshalEvent decodes a usage event in the binary encoding or as JSON.
func UnmarshalEvent(data []byte, e *UsageEvent) error {
	if !IsBinary(data) {
		return json.Unmarshal(data, e)
	}
	r, err := newWireReader(data, wireEvent)
	if err != nil {
		return err
	}
	*e = UsageEvent{}
	r.event(e)
	return r.done()
}

// MarshalRatedLine encodes l in the binary encoding (or JSON,
// SetWireJSON).
func MarshalRatedLine(l *RatedLine) []byte {
	if b, ok := asJSON(l); ok {
		return b
	}
	b := make([]byte, 0, 224+16*len(l.Event.Attributes))
	b = append(b, WireMagic, WireVersion, wireRated)
	b = appendString(b, l.LineID)
	b = appendEvent(b, &l.Event)
	b = appendString(b, l.Item)
	b = appendDecimal(b, l.UnitPrice)
	b = appendBool(b, l.UnitPriced)
	b = appendDecimal(b, l.Amount)
	b = appendString(b, l.Currency)
	b = appendString(b, l.Period)
	b = appendTime(b, l.RatedAt)
	return appendOrigin(b, l.Record)
}

// UnmarshalRatedLine decodes a rated line in the binary encoding or as JSON.
func UnmarshalRatedLine(data []byte, l *RatedLine) error {
	if !IsBinary(data) {
		return json.Unmarshal(data, l)
	}
	r, err := newWireReader(data, wireRated)
	if err != nil {
		return err
	}
	*l = RatedLine{}
	l.LineID = r.string()
	r.event(&l.Event)
	l.Item = r.string()
	l.UnitPrice = r.decimal()
	l.UnitPriced = r.bool()
	l.Amount = r.decimal()
	l.Currency = r.string()
	l.Period = r.string()
	l.RatedAt = r.time()
	l.Record = r.origin()
	return r.done()
}

// MarshalUnrated encodes u in the binary encoding (or JSON, SetWireJSON).
func MarshalUnrated(u *Unrated) []byte {
	if b, ok := asJSON(u); ok {
		return b
	}
	b := make([]byte, 0, 192+len(u.Reason)+len(u.Raw)+16*len(u.Event.Attributes))
	b = append(b, WireMagic, WireVersion, wireUnrated)
	b = appendEvent(b, &u.Event)
	b = appendString(b, u.ReasonCode)
	b = appendString(b, u.Reason)
	b = appendString(b, u.Stage)
	b = appendString(b, u.Raw)
	b = appendTime(b, u.At)
	return appendOrigin(b, u.Record)
}

// UnmarshalUnrated decodes an unrated record in the binary encoding or as
// JSON.
func UnmarshalUnrated(data []byte, u *Unrated) error {
	if !IsBinary(data) {
		return json.Unmarshal(data, u)
	}
	r, err := newWireReader(data, wireUnrated)
	if err != nil {
		return err
	}
	*u = Unrated{}
	r.event(&u.Event)
	u.ReasonCode = r.string()
	u.Reason = r.string()
	u.Stage = r.string()
	u.Raw = r.string()
	u.At = r.time()
	u.Record = r.origin()
	return r.done()
}

func appendEvent(b []byte, e *UsageEvent) []byte {
	b = appendString(b, e.Tenant)
	b = appendString(b, e.ID)
	b = appendString(b, e.Customer)
	b = appendString(b, e.Element)
	b = appendDecimal(b, e.Quantity)
	b = appendTime(b, e.Time)
	b = appendString(b, e.Contract)
	b = appendMap(b, e.Attributes)
	b = appendTime(b, e.ReceivedAt)
	if e.Import == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = appendString(b, e.Import.File)
	return appendString(b, e.Import.Job)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// Decimal forms: the coefficient as a varint, or as sign and magnitude.
const (
	decimalSmall byte = 0
	decimalBig   byte = 1
)

func appendDecimal(b []byte, d decimal.Decimal) []byte {
	if d.NumDigits() <= 18 {
		b = append(b, decimalSmall)
		b = binary.AppendVarint(b, d.CoefficientInt64())
	} else {
		c := d.Coefficient()
		b = append(b, decimalBig)
		b = appendBool(b, c.Sign() < 0)
		mag := c.Bytes()
		b = binary.AppendUvarint(b, uint64(len(mag)))
		b = append(b, mag...)
	}
	return binary.AppendVarint(b, int64(d.Exponent()))
}

// Time zones: UTC (any zone at offset 0), or a fixed offset east of UTC in
// seconds: what the same time decodes to from JSON (a zone's name is not
// kept).
const (
	zoneUTC    byte = 0
	zoneOffset byte = 1
)

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	_, off := t.Zone()
	if off == 0 {
		return append(b, zoneUTC) // as JSON's "Z" decodes
	}
	b = append(b, zoneOffset)
	return binary.AppendVarint(b, int64(off))
}

func appendMap(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	switch len(m) {
	case 0:
		return b
	case 1:
		for k, v := range m {
			b = appendString(b, k)
			b = appendString(b, v)
		}
		return b
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
	return b
}

func appendOrigin(b []byte, o *RecordOrigin) []byte {
	if o == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, int64(o.Partition))
	b = binary.AppendVarint(b, o.Offset)
	return appendString(b, o.Contract)
}

// errWire is the error of every malformed binary value.
var errWire = errors.New("malformed binary record")

// wireReader decodes one binary value. Strings are cut from one string copy
// of the whole value (one allocation for all of them). The first error
// sticks; later reads return zero values.
type wireReader struct {
	s   string
	pos int
	err error
}

func newWireReader(data []byte, kind byte) (*wireReader, error) {
	if len(data) < 3 {
		return nil, fmt.Errorf("%w: %d bytes", errWire, len(data))
	}
	if data[1] != WireVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", errWire, data[1], WireVersion)
	}
	if data[2] != kind {
		return nil, fmt.Errorf("%w: kind %d, want %d", errWire, data[2], kind)
	}
	return &wireReader{s: string(data), pos: 3}, nil
}

func (r *wireReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s at byte %d", errWire, what, r.pos)
	}
}

// done reports the first error, or an error if bytes are left over.
func (r *wireReader) done() error {
	if r.err == nil && r.pos != len(r.s) {
		r.err = fmt.Errorf("%w: %d bytes left over", errWire, len(r.s)-r.pos)
	}
	return r.err
}

func (r *wireReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if r.pos >= len(r.s) {
			break
		}
		c := r.s[r.pos]
		r.pos++
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.fail(what)
	return 0
}

func (r *wireReader) varint(what string) int64 {
	u := r.uvarint(what)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *wireReader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.s) {
		r.fail(what)
		return 0
	}
	c := r.s[r.pos]
	r.pos++
	return c
}

func (r *wireReader) string() string {
	n := r.uvarint("string length")
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)-r.pos) {
		r.fail("string length")
		return ""
	}
	s := r.s[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}

func (r *wireReader) bool() bool {
	switch r.byte("bool") {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail("bool")
	return false
}

func (r *wireReader) decimal() decimal.Decimal {
	var d decimal.Decimal
	switch r.byte("decimal form") {
	case decimalSmall:
		c := r.varint("decimal coefficient")
		exp := r.exponent()
		d = decimal.New(c, exp)
	case decimalBig:
		neg := r.bool()
		mag := r.string()
		exp := r.exponent()
		if r.err != nil {
			return decimal.Decimal{}
		}
		if len(mag) == 0 || mag[0] == 0 {
			r.fail("decimal coefficient") // not the canonical form
			return decimal.Decimal{}
		}
		c := new(big.Int).SetBytes([]byte(mag))
		if neg {
			c.Neg(c)
		}
		d = decimal.NewFromBigInt(c, exp)
	default:
		r.fail("decimal form")
	}
	return d
}

func (r *wireReader) exponent() int32 {
	e := r.varint("decimal exponent")
	if e < -1<<31 || e > 1<<31-1 {
		r.fail("decimal exponent")
		return 0
	}
	return int32(e)
}

func (r *wireReader) time() time.Time {
	sec := r.varint("time")
	nsec := r.uvarint("time nanoseconds")
	if nsec >= 1e9 {
		r.fail("time nanoseconds")
	}
	zone := r.byte("time zone")
	if r.err != nil {
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	switch zone {
	case zoneUTC:
		return t.UTC()
	case zoneOffset:
		off := r.varint("time zone offset")
		if off <= -1<<31 || off >= 1<<31 {
			r.fail("time zone offset")
			return time.Time{}
		}
		return t.In(time.FixedZone("", int(off)))
	}
	r.fail("time zone")
	return time.Time{}
}

func (r *wireReader) event(e *UsageEvent) {
	e.Tenant = r.string()
	e.ID = r.string()
	e.Customer = r.string()
	e.Element = r.string()
	e.Quantity = r.decimal()
	e.Time = r.time()
	e.Contract = r.string()
	if n := r.uvarint("attribute count"); n > 0 && r.err == nil {
		if n > uint64(len(r.s)-r.pos)/2 { // each pair takes at least 2 bytes
			r.fail("attribute count")
			return
		}
		e.Attributes = make(map[string]string, n)
		for range n {
			k := r.string()
			e.Attributes[k] = r.string()
		}
		if r.err == nil && uint64(len(e.Attributes)) != n {
			r.fail("attributes (a key repeats)")
		}
	}
	e.ReceivedAt = r.time()
	switch r.byte("import source") {
	case 0:
	case 1:
		e.Import = &ImportSource{File: r.string(), Job: r.string()}
	default:
		r.fail("import source")
	}
}

func (r *wireReader) origin() *RecordOrigin {
	switch r.byte("record origin") {
	case 0:
		return nil
	case 1:
		o := &RecordOrigin{}
		p := r.varint("record partition")
		if p < 0 || p > 1<<31-1 {
			r.fail("record partition")
		}
		o.Partition = int(p)
		o.Offset = r.varint("record offset")
		o.Contract = r.string()
		if r.err != nil {
			return nil
		}
		return o
	}
	r.fail("record origin")
	return nil
}
