package catalogstore

import (
	"context"
	"fmt"

	"github.com/kakin-dev/kakin/catalog"
)

// Diff says what applying a catalogue file would do to one entity.
type Diff struct {
	Kind   Kind
	ID     string
	Op     string // create, update or unchanged
	Before string // the current document (JSON), for update
	After  string // the file's document (JSON)
}

// entries lists a catalogue's entities in dependency order (what is
// referenced before what references it).
func entries(c *catalog.Catalogue) []struct {
	kind Kind
	doc  any
} {
	var out []struct {
		kind Kind
		doc  any
	}
	add := func(k Kind, doc any) {
		out = append(out, struct {
			kind Kind
			doc  any
		}{k, doc})
	}
	for i := range c.Elements {
		add(KindElement, &c.Elements[i])
	}
	for i := range c.RateTables {
		add(KindRateTable, &c.RateTables[i])
	}
	for i := range c.DiscountTables {
		add(KindDiscountTable, &c.DiscountTables[i])
	}
	for i := range c.Fees {
		add(KindFee, &c.Fees[i])
	}
	for i := range c.Plans {
		add(KindPlan, &c.Plans[i])
	}
	for i := range c.Services {
		add(KindService, &c.Services[i])
	}
	for i := range c.BasicContracts {
		add(KindBasicContract, &c.BasicContracts[i])
	}
	for i := range c.ServiceContracts {
		add(KindServiceContract, &c.ServiceContracts[i])
	}
	for i := range c.DiscountContracts {
		add(KindDiscountContract, &c.DiscountContracts[i])
	}
	return out
}

// PlanCatalogue compares a catalogue file with the tenant's current state in
// the replica. Entities the tenant has but the file does not list are left
// alone (a file need not hold everything).
func PlanCatalogue(r *Replica, tenant string, c *catalog.Catalogue) ([]Diff, error) {
	var out []Diff
	for _, e := range entries(c) {
		after, err := encodeDoc(e.doc)
		if err != nil {
			return nil, err
		}
		d := Diff{Kind: e.kind, ID: e.kind.ID(e.doc), Op: "create", After: after}
		if cur, ok := r.Get(tenant, e.kind, d.ID); ok && !cur.Deleted {
			if d.Before, err = encodeDoc(cur.Value); err != nil {
				return nil, err
			}
			d.Op = "update"
			if d.Before == after {
				d.Op = "unchanged"
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// ApplyCatalogue stores every entity of a catalogue file in one transaction:
// all of it, validated together (so the order of entries does not matter),
// or nothing. Unchanged entities get no new revision, so applying the same
// file again writes nothing.
func (s *Store) ApplyCatalogue(ctx context.Context, tenant, actor string, c *catalog.Catalogue) ([]Change, error) {
	if c.Tenant != "" && c.Tenant != tenant {
		return nil, fmt.Errorf("the catalogue file is for tenant %q, not %q", c.Tenant, tenant)
	}
	return s.Transact(ctx, tenant, actor, func(tx *Tx) error {
		for _, e := range entries(c) {
			tx.Put(e.kind, e.doc)
		}
		return nil
	})
}

// ExportCatalogue returns the tenant's masters (and, with contracts, its
// contracts) as a catalogue file's content.
func ExportCatalogue(r *Replica, tenant string, contracts bool) *catalog.Catalogue {
	snap := r.Catalogue(tenant)
	out := &catalog.Catalogue{Tenant: tenant, Services: snap.Services, Plans: snap.Plans, Fees: snap.Fees,
		Elements: snap.Elements, RateTables: snap.RateTables, DiscountTables: snap.DiscountTables}
	if contracts {
		out.BasicContracts, out.ServiceContracts, out.DiscountContracts = snap.BasicContracts, snap.ServiceContracts, snap.DiscountContracts
	}
	return out
}
