package usagedb

import (
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

// columns are the columns each table's insert fills, in the order its
// Append function passes them.
var columns = map[string]string{
	"rated_usage":      "tenant, period, customer, line_id, event_id, element, item, contract, quantity, unit_price, unit_priced, amount, currency, event_time, received_at, rated_at, version",
	"usage_duplicates": "tenant, event_id, customer, element, contract, quantity, event_time, received_at, raw_partition, raw_offset, first_partition, first_offset, first_received_at, payload_differs, detected_at",
	"usage_unrated":    "tenant, event_id, customer, element, contract, quantity, event_time, received_at, reason_code, reason, stage, raw, unrated_at, version",
	"usage_records": "tenant, event_id, customer, contract, element, quantity, event_time, event_nanos, received_at, received_nanos, " +
		"attribute_keys, attribute_values, accepted_partition, accepted_offset, stored_at, import_file, import_job",
	"usage_status": "tenant, event_id, customer, element, generation, action, status, reason, actor, requested_at, applied_at, priced",
}

// InsertInto is table's INSERT statement, for PrepareBatch; the batch is
// filled by the table's Append function.
func InsertInto(table string) string { return "INSERT INTO " + table + " (" + columns[table] + ")" }

// checkDecimal refuses what ClickHouse would silently truncate or wrap: more
// than 9 fraction digits, or a magnitude of schemas.MaxStoredDecimal (10^28)
// or more in a Decimal(38, 9) column (29 integer digits, one kept as
// headroom).
func checkDecimal(field string, d decimal.Decimal) error {
	if !d.Equal(d.Truncate(schemas.StoredDecimalPlaces)) {
		return fmt.Errorf("%s %s has more than %d decimal places", field, d, schemas.StoredDecimalPlaces)
	}
	if !schemas.StoredDecimalOK(d) {
		return fmt.Errorf("%s %s is out of range", field, d)
	}
	return nil
}

// AppendRated adds rated lines to a batch of rated_usage.
func AppendRated(b driver.Batch, lines []schemas.RatedLine) error {
	for i := range lines {
		l := &lines[i]
		for _, c := range []struct {
			name string
			v    decimal.Decimal
		}{{"quantity", l.Event.Quantity}, {"unit_price", l.UnitPrice}, {"amount", l.Amount}} {
			if err := checkDecimal(c.name, c.v); err != nil {
				return fmt.Errorf("line %s: %w", l.LineID, err)
			}
		}
		unitPriced := uint8(0)
		if l.UnitPriced {
			unitPriced = 1
		}
		if err := b.Append(l.Event.Tenant, l.Period, l.Event.Customer, l.LineID, l.Event.ID, l.Event.Element,
			l.Item, l.Event.Contract, l.Event.Quantity, l.UnitPrice, unitPriced, l.Amount, l.Currency,
			chTime(l.Event.Time), chTime(l.Event.ReceivedAt), chTime(l.RatedAt), uint64(l.RatedAt.UnixNano())); err != nil {
			return err
		}
	}
	return nil
}

// AppendDuplicates adds duplicates to a batch of usage_duplicates.
func AppendDuplicates(b driver.Batch, dups []schemas.Duplicate) error {
	for i := range dups {
		d := &dups[i]
		if err := checkDecimal("quantity", d.Event.Quantity); err != nil {
			return err
		}
		differs := uint8(0)
		if d.PayloadDiffers {
			differs = 1
		}
		if err := b.Append(d.Event.Tenant, d.Event.ID, d.Event.Customer, d.Event.Element, d.Event.Contract,
			d.Event.Quantity, chTime(d.Event.Time), chTime(d.Event.ReceivedAt), int32(d.Self.Partition), d.Self.Offset,
			int32(d.First.Partition), d.First.Offset, chTime(d.First.ReceivedAt), differs, chTime(d.DetectedAt)); err != nil {
			return err
		}
	}
	return nil
}

// AppendUnrated adds unrated records to a batch of usage_unrated.
func AppendUnrated(b driver.Batch, us []schemas.Unrated) error {
	for i := range us {
		u := &us[i]
		if err := checkDecimal("quantity", u.Event.Quantity); err != nil {
			return err
		}
		if err := b.Append(u.Event.Tenant, u.Event.ID, u.Event.Customer, u.Event.Element, u.Event.Contract,
			u.Event.Quantity, chTime(u.Event.Time), chTime(u.Event.ReceivedAt), u.ReasonCode, u.Reason, u.Stage, u.Raw,
			chTime(u.At), uint64(u.At.UnixNano())); err != nil {
			return err
		}
	}
	return nil
}

// AcceptedRecord is a usage record with its position in usage.accepted.
type AcceptedRecord struct {
	Event     schemas.UsageEvent
	Partition int
	Offset    int64
}

// AppendRecords adds accepted records, stored at now, to a batch of
// usage_records.
func AppendRecords(b driver.Batch, recs []AcceptedRecord, now time.Time) error {
	for i := range recs {
		e := &recs[i].Event
		if err := checkDecimal("quantity", e.Quantity); err != nil {
			return fmt.Errorf("record %s: %w", e.ID, err)
		}
		keys, values := sortedAttributes(e.Attributes)
		evTime, recvTime := chTime(e.Time), chTime(e.ReceivedAt)
		var file, job string
		if e.Import != nil {
			file, job = e.Import.File, e.Import.Job
		}
		if err := b.Append(e.Tenant, e.ID, e.Customer, e.Contract, e.Element, e.Quantity,
			evTime, uint32(evTime.Nanosecond()), recvTime, uint32(recvTime.Nanosecond()), keys, values,
			int32(recs[i].Partition), recs[i].Offset, now, file, job); err != nil {
			return err
		}
	}
	return nil
}

// sortedAttributes returns the attributes as parallel key and value slices
// in key order, so the stored row does not depend on map order.
func sortedAttributes(attrs map[string]string) ([]string, []string) {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = attrs[k]
	}
	return keys, values
}

// AppendStatuses adds status changes to a batch of usage_status.
func AppendStatuses(b driver.Batch, sts []schemas.StatusChange) error {
	for i := range sts {
		s := &sts[i]
		priced := uint8(0)
		if s.Priced {
			priced = 1
		}
		if err := b.Append(s.Event.Tenant, s.Event.ID, s.Event.Customer, s.Event.Element, s.Generation, s.Action,
			s.Status, s.Reason, s.Actor, chTime(s.RequestedAt), chTime(s.AppliedAt), priced); err != nil {
			return err
		}
	}
	return nil
}

// chTime maps a time into ClickHouse DateTime's range; an unknown (zero) time
// of a malformed record becomes the epoch rather than failing the insert.
func chTime(t time.Time) time.Time {
	if t.Unix() < 0 {
		return time.Unix(0, 0).UTC()
	}
	return t
}
