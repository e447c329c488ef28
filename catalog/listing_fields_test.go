package catalog

import (
	"strings"
	"testing"
)

// A catalogue file may carry the contract listing fields of a service
// contract (spec 002): label, associated services and typed accounts; a
// contract without them decodes as before.
func TestDecodeContractListingFields(t *testing.T) {
	c, err := Decode(strings.NewReader(`
service_contracts:
  - id: k1
    customer: c1
    basic_contract: b1
    service: av
    start_date: 2026-02-01
    plans: [{plan: p, start_date: 2026-02-01}]
    label: pcs
    associated_services: [{service: mtx1, name: Private backbone, label: bb}]
    accounts:
      count: 300
      range: {from: 101, to: 500}
      platforms: [{platform: windows, count: 200}, {platform: mac, range: {from: 1, to: 100}}]
  - id: k2
    customer: c1
    basic_contract: b1
    service: av
    start_date: 2026-02-01
    plans: [{plan: p, start_date: 2026-02-01}]
`))
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := c.ServiceContracts[0], c.ServiceContracts[1]
	a := k1.Accounts
	if k1.Label != "pcs" || len(k1.AssociatedServices) != 1 || k1.AssociatedServices[0] != (AssociatedService{Service: "mtx1", Name: "Private backbone", Label: "bb"}) ||
		a == nil || *a.Count != 300 || a.Range.From != 101 || *a.Range.To != 500 || len(a.Platforms) != 2 || *a.Platforms[0].Count != 200 ||
		a.Platforms[1].Count != nil || *a.Platforms[1].Range.To != 100 {
		t.Errorf("k1: %+v", k1)
	}
	if k2.Label != "" || k2.AssociatedServices != nil || k2.Accounts != nil {
		t.Errorf("k2: %+v", k2)
	}
	if err := k1.Validate(); err != nil {
		t.Errorf("k1 is valid: %v", err)
	}
}
