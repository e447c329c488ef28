// Package usagetest builds the messages the aggregator stores (rated lines,
// duplicates, unrated records, accepted records, status changes) for the
// tests of the packages that write and read the usage tables (aggregator,
// usagedb, admin/usage). It is plumbing for tests only.
package usagetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// March and RatedTime are the fixtures' event and rating times (fixed:
// these records are stored and read back, never compared with the clock).
var (
	March     = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	RatedTime = time.Date(2026, 3, 14, 10, 0, 5, 0, time.UTC)
)

// Dec parses a decimal literal of a fixture.
func Dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// Line is a rated line of one event; its id is derived as the rater does.
func Line(tenant, customer, period, eventID, element, qty, amount, currency string) schemas.RatedLine {
	return schemas.RatedLine{
		LineID: schemas.LineID(tenant, eventID, element),
		Event: schemas.UsageEvent{Tenant: tenant, ID: eventID, Customer: customer, Element: element,
			Quantity: Dec(qty), Time: March, ReceivedAt: March.Add(time.Second)},
		Item: element, UnitPrice: Dec("0.01"), Amount: Dec(amount), Currency: currency, Period: period,
		RatedAt: RatedTime,
	}
}

// JSONValue encodes v as a message value, failing t on error.
func JSONValue(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RatedMsg is l as a usage.rated message at partition p, offset o.
func RatedMsg(t testing.TB, p int, o int64, l schemas.RatedLine) kafka.Message {
	return kafka.Message{Topic: schemas.TopicRated, Partition: p, Offset: o, Value: JSONValue(t, &l), Time: l.Event.ReceivedAt}
}

// DupMsg is d as a usage.duplicates message.
func DupMsg(t testing.TB, p int, o int64, d schemas.Duplicate) kafka.Message {
	return kafka.Message{Topic: schemas.TopicDuplicates, Partition: p, Offset: o, Value: JSONValue(t, &d), Time: d.Event.ReceivedAt}
}

// UnratedMsg is u as a usage.unrated message.
func UnratedMsg(t testing.TB, p int, o int64, u schemas.Unrated) kafka.Message {
	return kafka.Message{Topic: schemas.TopicUnrated, Partition: p, Offset: o, Value: JSONValue(t, &u), Time: u.Event.ReceivedAt}
}

// Duplicate is a repeat of id flagged by dedupe (its own and the first claim).
func Duplicate(tenant, id string, rawP int, rawO int64, firstP int, firstO int64, differs bool) schemas.Duplicate {
	return schemas.Duplicate{
		Event: schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "cust-1", Element: "api_calls",
			Quantity: Dec("1"), Time: March, ReceivedAt: March.Add(time.Minute)},
		Self:           schemas.Claim{Partition: rawP, Offset: rawO, PayloadHash: 2, ReceivedAt: March.Add(time.Minute)},
		First:          schemas.Claim{Partition: firstP, Offset: firstO, PayloadHash: 1, ReceivedAt: March.Add(time.Second)},
		PayloadDiffers: differs,
		DetectedAt:     RatedTime,
	}
}

// Unrated is a record of id parked with reason.
func Unrated(tenant, id, reason string) schemas.Unrated {
	return schemas.Unrated{
		Event: schemas.UsageEvent{Tenant: tenant, ID: id, Customer: "cust-x", Element: "api_calls",
			Quantity: Dec("2"), Time: March, ReceivedAt: March.Add(time.Second)},
		ReasonCode: reason, Reason: "no such thing", Stage: "rater", At: RatedTime,
	}
}

// Record is a usage event as it arrives on usage.accepted.
func Record(tenant, id, customer, element, contract string, minutes int) schemas.UsageEvent {
	return schemas.UsageEvent{Tenant: tenant, ID: id, Customer: customer, Element: element, Contract: contract,
		Quantity: Dec("1.5"), Time: March.Add(time.Duration(minutes)*time.Minute + 987654321),
		ReceivedAt: March.Add(time.Hour + time.Duration(minutes)*time.Minute + 5), Attributes: map[string]string{"region": "jp", "a": "1"}}
}

// AcceptedMsg is ev as a usage.accepted message.
func AcceptedMsg(t testing.TB, p int, o int64, ev schemas.UsageEvent) kafka.Message {
	return kafka.Message{Topic: schemas.TopicAccepted, Partition: p, Offset: o, Value: JSONValue(t, &ev), Time: ev.ReceivedAt}
}

// StatusMsg is the status change of ev at correction generation gen as a
// usage.status message.
func StatusMsg(t testing.TB, p int, o int64, ev schemas.UsageEvent, gen uint64) kafka.Message {
	st := schemas.StatusChange{Event: ev, Generation: gen, Action: schemas.ActionForGeneration(gen),
		Status: schemas.StatusForGeneration(gen), Actor: "t", RequestedAt: RatedTime, AppliedAt: RatedTime, Priced: true}
	return kafka.Message{Topic: schemas.TopicStatus, Partition: p, Offset: o, Value: JSONValue(t, &st), Time: RatedTime}
}
