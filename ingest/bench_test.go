package ingest

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseNDJSON measures splitting and validating a 1,000-record body,
// the CPU cost of ingest per request before the Kafka write.
func BenchmarkParseNDJSON(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, `{"id":"evt-%08d","customer":"cust-%04d","element":"api_calls","quantity":"12.345","time":"2026-11-01T10:00:00+09:00","attributes":{"region":"jp"}}`+"\n", i, i%1000)
	}
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		raws, err := splitRecords(body, true, 10000)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range raws {
			if _, errs := parseEvent(r, "acme", testNow, DefaultLimits); len(errs) > 0 {
				b.Fatal(errs)
			}
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParseNDJSONRejected measures a 1,000-record body whose every
// record has three fields of the wrong JSON type: the path that names each
// of them (encoding/json stops at the first).
func BenchmarkParseNDJSONRejected(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, `{"id":"evt-%08d","customer":%d,"element":"api_calls","quantity":true,"time":7,"attributes":{"region":"jp"}}`+"\n", i, i%1000)
	}
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		raws, err := splitRecords(body, true, 10000)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range raws {
			if _, errs := parseEvent(r, "acme", testNow, DefaultLimits); len(errs) == 0 {
				b.Fatal("accepted")
			}
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
