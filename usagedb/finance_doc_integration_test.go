package usagedb

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"
)

// docExample is one SQL block of docs/FINANCE.md with the answer block that
// follows it.
type docExample struct {
	line   int
	sql    string
	header []string
	rows   [][]string
}

// financeDocExamples parses every ```sql block of the document and the
// ```text block after it (a header line and rows, cells separated by |).
func financeDocExamples(t *testing.T, doc string) []docExample {
	t.Helper()
	lines := strings.Split(doc, "\n")
	var out []docExample
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sql" {
			continue
		}
		ex := docExample{line: i + 1}
		var sql []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			sql = append(sql, lines[i])
		}
		ex.sql = strings.Join(sql, "\n")
		// The next fenced block must be the answer.
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) == ""; i++ {
		}
		if i >= len(lines) || strings.TrimSpace(lines[i]) != "```text" {
			t.Fatalf("FINANCE.md:%d: a sql block must be followed by a ```text block with its answer", ex.line)
		}
		first := true
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			cells := splitCells(lines[i])
			if first {
				ex.header, first = cells, false
			} else {
				ex.rows = append(ex.rows, cells)
			}
		}
		out = append(out, ex)
	}
	return out
}

func splitCells(line string) []string {
	parts := strings.Split(line, "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// TestFinanceDocQueries runs every example query of docs/FINANCE.md on the
// sample data the document describes and asserts the answer printed under
// it: the doc and the views cannot drift apart.
func TestFinanceDocQueries(t *testing.T) {
	raw, err := os.ReadFile("../docs/FINANCE.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := financeDocExamples(t, string(raw))
	if len(examples) < 15 {
		t.Fatalf("found %d example queries in FINANCE.md, want at least 15", len(examples))
	}
	conn := newDB(t)
	ctx := context.Background()
	seedFinanceSample(t, conn)
	seedFinanceReceivables(t, conn)
	for _, ex := range examples {
		t.Run(fmt.Sprintf("FINANCE.md:%d", ex.line), func(t *testing.T) {
			rows, err := conn.Query(ctx, ex.sql)
			if err != nil {
				t.Fatalf("%s\n: %v", ex.sql, err)
			}
			defer rows.Close()
			header := rows.Columns()
			types := rows.ColumnTypes()
			var got [][]string
			for rows.Next() {
				dest := make([]any, len(types))
				for i, ct := range types {
					dest[i] = reflect.New(ct.ScanType()).Interface()
				}
				if err := rows.Scan(dest...); err != nil {
					t.Fatal(err)
				}
				row := make([]string, len(dest))
				for i, d := range dest {
					row[i] = cell(reflect.ValueOf(d).Elem().Interface())
				}
				got = append(got, row)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(header, ex.header) {
				t.Errorf("columns %q, the doc says %q", header, ex.header)
			}
			if !reflect.DeepEqual(got, ex.rows) {
				t.Errorf("%s\nanswered %q\nthe doc says %q", ex.sql, got, ex.rows)
			}
		})
	}
}

func cell(v any) string {
	switch x := v.(type) {
	case decimal.Decimal:
		return x.String()
	case *decimal.Decimal:
		if x == nil {
			return "NULL"
		}
		return x.String()
	case time.Time:
		return x.UTC().Format(time.DateTime)
	default:
		return fmt.Sprint(v)
	}
}

func finLine(tenant, customer, contract, period, eventID, element, item, qty, amount string, at time.Time) schemas.RatedLine {
	return schemas.RatedLine{
		LineID: schemas.LineID(tenant, eventID, item),
		Event: schemas.UsageEvent{Tenant: tenant, ID: eventID, Customer: customer, Element: element, Contract: contract,
			Quantity: dec(qty), Time: at, ReceivedAt: at.Add(time.Second)},
		Item: item, Amount: dec(amount), Currency: "JPY", Period: period, RatedAt: at.Add(2 * time.Second),
	}
}

// seedFinanceSample loads the sample data FINANCE.md describes under
// "Example queries".
func seedFinanceSample(t *testing.T, conn driver.Conn) {
	t.Helper()
	ctx := context.Background()
	mar := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	feb := time.Date(2026, 2, 14, 10, 0, 0, 0, time.UTC)
	e5 := finLine("acme", "cust-002", "sc-c", "2026-03", "e5", "api", "sc-c/requests", "100", "5", mar)
	e5inv := e5
	e5inv.LineID = schemas.CorrectionLineID("acme", "e5", e5.Item, schemas.ActionInvalidate, 1)
	e5inv.Event.Quantity, e5inv.Amount = dec("-100"), dec("-5")
	lines := []schemas.RatedLine{
		finLine("acme", "cust-001", "sc-a", "2026-03", "fixed:sc-a:2026-03:plan-s:storage-base:2026-03-01", "storage-base", "sc-a/storage-base", "1", "100",
			time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)),
		finLine("acme", "cust-001", "sc-a", "2026-03", "e1", "gb", "sc-a/gb-fee", "10", "20", mar),
		finLine("acme", "cust-001", "sc-a", "2026-03", "e2", "gb", "sc-a/gb-fee", "5", "10", mar),
		finLine("acme", "cust-001", "sc-b", "2026-03", "e3", "gb", "sc-b/gb-fee", "5", "10", mar),
		finLine("acme", "cust-001", "sc-a", "2026-02", "e6", "gb", "sc-a/gb-fee", "1", "2", feb),
		finLine("acme", "cust-002", "sc-c", "2026-03", "e4", "api", "sc-c/requests", "1000", "50", mar),
		e5, e5inv,
		finLine("acme", "cust-003", "sc-d", "2026-03", "u2", "api", "sc-d/requests", "20", "1", mar),
		finLine("globex", "cust-001", "sc-a", "2026-03", "e1", "gb", "sc-a/gb-fee", "999", "999", mar),
	}
	unrated := func(id, customer, reason string, at time.Time) schemas.Unrated {
		return schemas.Unrated{Event: schemas.UsageEvent{Tenant: "acme", ID: id, Customer: customer, Element: "api",
			Quantity: dec("1"), Time: at, ReceivedAt: at.Add(time.Second)}, ReasonCode: reason, Reason: reason, Stage: "rater", At: at}
	}
	var batch []kafka.Message
	for i, l := range lines {
		batch = append(batch, ratedMsg(t, i%3, int64(i), l))
	}
	for i, u := range []schemas.Unrated{
		unrated("u1", "cust-001", schemas.ReasonUnknownElement, mar),
		unrated("u2", "cust-003", schemas.ReasonNoContract, mar),
		unrated("u3", "cust-001", schemas.ReasonNoContract, feb),
	} {
		batch = append(batch, kafka.Message{Topic: schemas.TopicUnrated, Partition: 0, Offset: int64(50 + i), Value: jsonValue(t, &u), Time: u.At})
	}
	batch = append(batch,
		dupMsg(t, 0, 100, duplicate("acme", "e1", 0, 100, 0, 1, false)),
		dupMsg(t, 0, 101, duplicate("acme", "e1", 0, 101, 0, 1, false)),
		dupMsg(t, 1, 102, duplicate("acme", "e4", 1, 102, 1, 4, true)))
	// Every message is delivered twice.
	stage := newStage(conn)
	for range 2 {
		if err := stage.HandleBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	b, err := conn.PrepareBatch(ctx, `INSERT INTO catalog_entities (tenant, kind, id, revision, seq, created_seq, created_at, deleted,
		changed_at, changed_by, doc, pii, bi_name, bi_email, bi_phone, bi_address, customer)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct{ tenant, id, customer, service, extra string }{
		{"acme", "sc-a", "cust-001", "storage", `,"label":"head office","associated_services":[{"service":"mtx1","name":"Private backbone"}]`},
		{"acme", "sc-b", "cust-001", "backup", ""},
		{"acme", "sc-c", "cust-002", "api", ""}, {"acme", "sc-d", "cust-003", "api", ""},
		{"globex", "sc-a", "cust-001", "other", `,"label":"globex label"`},
	} {
		doc := fmt.Sprintf(`{"id":%q,"customer":%q,"basic_contract":"b-1","service":%q,"start_date":"2026-01-01","plans":[{"plan":"p","start_date":"2026-01-01"}]%s}`,
			c.id, c.customer, c.service, c.extra)
		if err := b.Append(c.tenant, "service_contract", c.id, uint64(1), uint64(i+1), uint64(i+1), mar, uint8(0), mar, "t", doc,
			"", "", "", "", "", c.customer); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}
