package schemas

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestUsageEventImportJSON keeps the import stamp backward compatible: an API
// record's JSON has no "import" key (consumers and stored messages from before
// the field read the same), an imported record's round-trips, and the stamp is
// not part of the payload hash.
func TestUsageEventImportJSON(t *testing.T) {
	api := UsageEvent{Tenant: "t", ID: "1", Customer: "c", Element: "e",
		Quantity: decimal.RequireFromString("2"), Time: time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC)}
	b, err := json.Marshal(api)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"import"`) {
		t.Fatalf("an API record carries an import key: %s", b)
	}
	var old UsageEvent
	if err := json.Unmarshal([]byte(`{"tenant":"t","id":"1","customer":"c","element":"e","quantity":"2","time":"2019-03-01T00:00:00Z","received_at":"2019-03-01T00:00:00Z"}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Import != nil {
		t.Fatalf("a record without the key decodes with an import: %+v", old.Import)
	}

	imported := api
	imported.Import = &ImportSource{File: "march usage.csv", Job: "job-42"}
	b, err = json.Marshal(imported)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"import":{"file":"march usage.csv","job":"job-42"}`) {
		t.Fatalf("imported record JSON = %s", b)
	}
	var back UsageEvent
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Import == nil || *back.Import != *imported.Import {
		t.Fatalf("round trip lost the import: %+v", back.Import)
	}
	if PayloadHash(&api) != PayloadHash(&imported) {
		t.Fatal("the import stamp changes the payload hash")
	}
}
