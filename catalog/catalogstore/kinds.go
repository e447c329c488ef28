package catalogstore

import (
	"fmt"
	"slices"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

// Kind is an entity kind of the catalogue.
type Kind uint8

// The entity kinds. Masters carry effective-dated versions; the others are
// customers, groups and contracts.
const (
	KindCustomer Kind = iota
	KindGroup
	KindBasicContract
	KindServiceContract
	KindDiscountContract
	KindService
	KindPlan
	KindFee
	KindElement
	KindRateTable
	KindDiscountTable
	numKinds
)

// Kinds lists every kind.
var Kinds = []Kind{KindCustomer, KindGroup, KindBasicContract, KindServiceContract, KindDiscountContract,
	KindService, KindPlan, KindFee, KindElement, KindRateTable, KindDiscountTable}

// MasterKinds lists the master kinds, in the order a catalogue file lists them.
var MasterKinds = []Kind{KindService, KindPlan, KindFee, KindElement, KindRateTable, KindDiscountTable}

// String is the kind's name, as stored in the kind column.
func (k Kind) String() string {
	if int(k) < len(specs) {
		return specs[k].name
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Label is the kind's name for messages ("service contract").
func (k Kind) Label() string { return specs[k].label }

// IsMaster reports whether k is a master with effective-dated versions.
func (k Kind) IsMaster() bool { return specs[k].master }

// IDField is the JSON field holding the entity's id: "code" for masters,
// "id" for the others.
func (k Kind) IDField() string {
	if k.IsMaster() {
		return "code"
	}
	return "id"
}

// ParseKind reads a kind name.
func ParseKind(s string) (Kind, bool) {
	for _, k := range Kinds {
		if specs[k].name == s {
			return k, true
		}
	}
	return 0, false
}

// New returns a new empty document of the kind: a *catalog.Plan for
// KindPlan, and so on (*catalog.Customer for customers).
func (k Kind) New() any { return specs[k].newValue() }

// ID returns the id (code for masters) of a document of the kind.
func (k Kind) ID(v any) string { return specs[k].id(v) }

// SetID sets the id (code) of a document of the kind.
func (k Kind) SetID(v any, id string) { specs[k].setID(v, id) }

// Validate checks a document of the kind on its own (references are checked
// by the store).
func (k Kind) Validate(v any) error { return specs[k].validate(v) }

// Filters lists the search filters of the kind: exact-match fields and
// predicates.
func (k Kind) Filters() []Filter {
	s := &specs[k]
	out := make([]Filter, 0, len(s.facets)+len(s.preds))
	for _, f := range s.facets {
		out = append(out, Filter{Name: f.name, Doc: f.doc})
	}
	for _, p := range s.preds {
		out = append(out, Filter{Name: p.name, Doc: p.doc, Format: p.format})
	}
	return out
}

// Filter describes one search filter of a kind.
type Filter struct {
	Name   string
	Doc    string
	Format string // "" (exact text), "date" or "date-time"
}

// facet is a field a kind can be searched by with an exact value. Fields
// with few distinct values (status, service, currency) are interned and
// matched exactly in the search scan; fields with many (customer ids, blind
// indexes) are hashed and every hash match is verified.
type facet struct {
	name   string
	doc    string
	high   bool
	values func(v any) []string
}

// pred is a search filter that is a predicate on the document, with a
// parameter (a day, an instant).
type pred struct {
	name   string
	doc    string
	format string
	parse  func(string) (func(v any) bool, error)
}

// spec is what the store knows about a kind.
type spec struct {
	kind     Kind
	name     string // stored in the kind column
	label    string // for messages
	master   bool
	newValue func() any
	id       func(any) string
	setID    func(any, string)
	validate func(any) error
	facets   []facet
	preds    []pred
	customer func(any) string            // the owning customer (customers, contracts)
	term     func(any) catalog.DateRange // contract terms (nil for other kinds)
	symSlot  []int                       // facet index -> sym slot (low) or hash slot (high)
}

const (
	symSlots  = 4
	hashSlots = 4
)

var specs [numKinds]spec

// define registers a kind whose documents are *T.
func define[T any](k Kind, name, label string, master bool, id func(*T) string, setID func(*T, string), validate func(*T) error) *spec {
	s := &specs[k]
	*s = spec{kind: k, name: name, label: label, master: master,
		newValue: func() any { return new(T) },
		id:       func(v any) string { return id(v.(*T)) },
		setID:    func(v any, i string) { setID(v.(*T), i) },
		validate: func(v any) error { return validate(v.(*T)) },
		customer: func(any) string { return "" },
	}
	return s
}

// facetOf builds a facet of documents *T.
func facetOf[T any](name, doc string, high bool, values func(*T) []string) facet {
	return facet{name: name, doc: doc, high: high, values: func(v any) []string { return values(v.(*T)) }}
}

func one(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func status(cancelled bool) []string {
	if cancelled {
		return []string{"cancelled"}
	}
	return []string{"active"}
}

// activeOn filters contracts whose term contains a day (Query.ActiveOn,
// evaluated in the search scan without touching the document).
var activeOn = pred{name: "active_on", format: "date", doc: "contracts whose term (start_date to end_date, inclusive) contains this day (YYYY-MM-DD)"}

// validAt filters masters that have a version valid at an instant.
func validAt[T, V any](versions func(*T) []V, validity func(*V) catalog.Validity) pred {
	return pred{name: "valid_at", format: "date-time", doc: "masters with a version valid at this instant (RFC 3339)",
		parse: func(s string) (func(any) bool, error) {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, fmt.Errorf("want an RFC 3339 timestamp")
			}
			return func(v any) bool {
				_, ok := catalog.VersionAt(versions(v.(*T)), validity, t)
				return ok
			}, nil
		}}
}

// versionValues collects a field's values over every version.
func versionValues[V any](versions []V, field func(*V) []string) []string {
	var out []string
	for i := range versions {
		for _, s := range field(&versions[i]) {
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// termTimes is a contract term as the start_date and end_date columns.
func termTimes(r catalog.DateRange) (*time.Time, *time.Time) {
	start := r.Start.In(time.UTC)
	if r.End == nil {
		return &start, nil
	}
	end := r.End.In(time.UTC)
	return &start, &end
}

func init() {
	// Customers. In the store a customer is a *StoredCustomer (personal
	// fields sealed); the API reads and writes *catalog.Customer.
	s := define(KindCustomer, "customer", "customer", false,
		func(c *catalog.Customer) string { return c.ID }, func(c *catalog.Customer, id string) { c.ID = id },
		(*catalog.Customer).Validate)
	s.customer = func(v any) string { return customerID(v) }
	s.facets = []facet{
		{name: "status", doc: "active or suspended", values: func(v any) []string {
			st := storedOf(v).Status
			if st == "" {
				st = "active"
			}
			return []string{st}
		}},
		{name: "name", high: true, doc: "exact name (matched through a keyed blind index; case and spacing are normalised)", values: func(v any) []string { return one(storedOf(v).Blind[BlindName]) }},
		{name: "address", high: true, doc: "exact address (blind index)", values: func(v any) []string { return one(storedOf(v).Blind[BlindAddress]) }},
		{name: "phone", high: true, doc: "exact phone number (blind index; only digits and a leading + count)", values: func(v any) []string { return one(storedOf(v).Blind[BlindPhone]) }},
		{name: "email", high: true, doc: "exact e-mail address (blind index; case-insensitive)", values: func(v any) []string { return one(storedOf(v).Blind[BlindEmail]) }},
	}

	s = define(KindGroup, "group", "group", false,
		func(g *catalog.Group) string { return g.ID }, func(g *catalog.Group, id string) { g.ID = id }, (*catalog.Group).Validate)
	s.facets = []facet{
		facetOf("member", "groups that have this customer as a member", true, func(g *catalog.Group) []string { return g.Members }),
		facetOf("name", "exact group name", true, func(g *catalog.Group) []string { return one(g.Name) }),
	}

	s = define(KindBasicContract, "basic_contract", "basic contract", false,
		func(b *catalog.BasicContract) string { return b.ID }, func(b *catalog.BasicContract, id string) { b.ID = id },
		(*catalog.BasicContract).Validate)
	s.customer = func(v any) string { return v.(*catalog.BasicContract).Customer }
	s.term = func(v any) catalog.DateRange { return v.(*catalog.BasicContract).DateRange }
	s.facets = []facet{
		facetOf("currency", "billing currency", false, func(b *catalog.BasicContract) []string { return one(b.Currency) }),
		facetOf("customer", "the customer's contracts", true, func(b *catalog.BasicContract) []string { return one(b.Customer) }),
	}
	s.preds = []pred{activeOn}

	s = define(KindServiceContract, "service_contract", "service contract", false,
		func(c *catalog.ServiceContract) string { return c.ID }, func(c *catalog.ServiceContract, id string) { c.ID = id },
		(*catalog.ServiceContract).Validate)
	s.customer = func(v any) string { return v.(*catalog.ServiceContract).Customer }
	s.term = func(v any) catalog.DateRange { return v.(*catalog.ServiceContract).DateRange }
	s.facets = []facet{
		facetOf("service", "contracts of this service", false, func(c *catalog.ServiceContract) []string { return one(c.Service) }),
		facetOf("status", "active or cancelled (解約)", false, func(c *catalog.ServiceContract) []string { return status(c.Cancelled) }),
		facetOf("plan", "contracts with a price plan term of this plan", false, func(c *catalog.ServiceContract) []string {
			var out []string
			for _, p := range c.Plans {
				if !slices.Contains(out, p.Plan) {
					out = append(out, p.Plan)
				}
			}
			return out
		}),
		facetOf("customer", "the customer's contracts", true, func(c *catalog.ServiceContract) []string { return one(c.Customer) }),
		facetOf("basic_contract", "contracts under this basic contract", true, func(c *catalog.ServiceContract) []string { return one(c.Basic) }),
		facetOf("parent", "child contracts and options of this contract", true, func(c *catalog.ServiceContract) []string { return one(c.Parent) }),
	}
	s.preds = []pred{activeOn}

	s = define(KindDiscountContract, "discount_contract", "discount contract", false,
		func(d *catalog.DiscountContract) string { return d.ID }, func(d *catalog.DiscountContract, id string) { d.ID = id },
		(*catalog.DiscountContract).Validate)
	s.customer = func(v any) string { return v.(*catalog.DiscountContract).Customer }
	s.term = func(v any) catalog.DateRange { return v.(*catalog.DiscountContract).DateRange }
	s.facets = []facet{
		facetOf("service", "contracts of this discount service", false, func(d *catalog.DiscountContract) []string { return one(d.Service) }),
		facetOf("discount_table", "contracts using this discount table", false, func(d *catalog.DiscountContract) []string { return one(d.DiscountTable) }),
		facetOf("status", "active or cancelled (解約)", false, func(d *catalog.DiscountContract) []string { return status(d.Cancelled) }),
		facetOf("customer", "the customer's contracts", true, func(d *catalog.DiscountContract) []string { return one(d.Customer) }),
	}
	s.preds = []pred{activeOn}

	s = define(KindService, "service", "service", true,
		func(m *catalog.Service) string { return m.Code }, func(m *catalog.Service, id string) { m.Code = id }, (*catalog.Service).Validate)
	s.facets = []facet{
		facetOf("kind", "service or option", false, func(m *catalog.Service) []string {
			return versionValues(m.Versions, func(v *catalog.ServiceVersion) []string {
				if v.Kind == "" {
					return []string{string(catalog.KindService)}
				}
				return []string{string(v.Kind)}
			})
		}),
		facetOf("parent", "children and options of this service", false, func(m *catalog.Service) []string {
			return versionValues(m.Versions, func(v *catalog.ServiceVersion) []string { return []string{v.Parent} })
		}),
		facetOf("plan", "services offering this plan", false, func(m *catalog.Service) []string {
			return versionValues(m.Versions, func(v *catalog.ServiceVersion) []string { return v.Plans })
		}),
	}
	s.preds = []pred{validAt(func(m *catalog.Service) []catalog.ServiceVersion { return m.Versions },
		func(v *catalog.ServiceVersion) catalog.Validity { return v.Validity })}

	s = define(KindPlan, "plan", "plan", true,
		func(m *catalog.Plan) string { return m.Code }, func(m *catalog.Plan, id string) { m.Code = id }, (*catalog.Plan).Validate)
	s.facets = []facet{
		facetOf("type", "fixed (定額) or metered (従量)", false, func(m *catalog.Plan) []string {
			return versionValues(m.Versions, func(v *catalog.PlanVersion) []string { return []string{string(v.Type)} })
		}),
		facetOf("currency", "plans priced in this currency", false, func(m *catalog.Plan) []string {
			return versionValues(m.Versions, func(v *catalog.PlanVersion) []string { return []string{v.Currency} })
		}),
		facetOf("fee", "plans charging this fee", false, func(m *catalog.Plan) []string {
			return versionValues(m.Versions, func(v *catalog.PlanVersion) []string { return v.Fees })
		}),
	}
	s.preds = []pred{validAt(func(m *catalog.Plan) []catalog.PlanVersion { return m.Versions },
		func(v *catalog.PlanVersion) catalog.Validity { return v.Validity })}

	s = define(KindFee, "fee", "fee", true,
		func(m *catalog.Fee) string { return m.Code }, func(m *catalog.Fee, id string) { m.Code = id }, (*catalog.Fee).Validate)
	s.facets = []facet{
		facetOf("kind", "fixed or metered", false, func(m *catalog.Fee) []string {
			return versionValues(m.Versions, func(v *catalog.FeeVersion) []string { return []string{string(v.Kind)} })
		}),
		facetOf("element", "fees metering this element", false, func(m *catalog.Fee) []string {
			return versionValues(m.Versions, func(v *catalog.FeeVersion) []string { return []string{v.Element} })
		}),
		facetOf("rate_table", "fees priced with this rate table", false, func(m *catalog.Fee) []string {
			return versionValues(m.Versions, func(v *catalog.FeeVersion) []string {
				out := make([]string, len(v.Rates))
				for i, r := range v.Rates {
					out[i] = r.RateTable
				}
				return out
			})
		}),
	}
	s.preds = []pred{validAt(func(m *catalog.Fee) []catalog.FeeVersion { return m.Versions },
		func(v *catalog.FeeVersion) catalog.Validity { return v.Validity })}

	s = define(KindElement, "element", "calculation element", true,
		func(m *catalog.Element) string { return m.Code }, func(m *catalog.Element, id string) { m.Code = id }, (*catalog.Element).Validate)
	s.facets = []facet{
		facetOf("aggregation", "sum, max, count, unique_count or latest", false, func(m *catalog.Element) []string {
			return versionValues(m.Versions, func(v *catalog.ElementVersion) []string { return []string{string(v.Aggregation)} })
		}),
		facetOf("unit", "elements measured in this unit", false, func(m *catalog.Element) []string {
			return versionValues(m.Versions, func(v *catalog.ElementVersion) []string { return []string{v.Unit} })
		}),
	}
	s.preds = []pred{validAt(func(m *catalog.Element) []catalog.ElementVersion { return m.Versions },
		func(v *catalog.ElementVersion) catalog.Validity { return v.Validity })}

	s = define(KindRateTable, "rate_table", "rate table", true,
		func(m *catalog.RateTable) string { return m.Code }, func(m *catalog.RateTable, id string) { m.Code = id }, (*catalog.RateTable).Validate)
	s.facets = []facet{
		facetOf("model", "per_unit, graduated, volume, package, overage or percentage", false, func(m *catalog.RateTable) []string {
			return versionValues(m.Versions, func(v *catalog.RateTableVersion) []string { return []string{string(v.Model)} })
		}),
	}
	s.preds = []pred{validAt(func(m *catalog.RateTable) []catalog.RateTableVersion { return m.Versions },
		func(v *catalog.RateTableVersion) catalog.Validity { return v.Validity })}

	s = define(KindDiscountTable, "discount_table", "discount table", true,
		func(m *catalog.DiscountTable) string { return m.Code }, func(m *catalog.DiscountTable, id string) { m.Code = id }, (*catalog.DiscountTable).Validate)
	s.facets = []facet{
		facetOf("kind", "percentage or fixed", false, func(m *catalog.DiscountTable) []string {
			return versionValues(m.Versions, func(v *catalog.DiscountTableVersion) []string { return []string{string(v.Kind)} })
		}),
		facetOf("basis", "quantity or amount", false, func(m *catalog.DiscountTable) []string {
			return versionValues(m.Versions, func(v *catalog.DiscountTableVersion) []string { return []string{string(v.Basis)} })
		}),
	}
	s.preds = []pred{validAt(func(m *catalog.DiscountTable) []catalog.DiscountTableVersion { return m.Versions },
		func(v *catalog.DiscountTableVersion) catalog.Validity { return v.Validity })}

	// Assign each facet its slot in the record.
	for k := range specs {
		s := &specs[k]
		low, high := 0, 0
		s.symSlot = make([]int, len(s.facets))
		for i, f := range s.facets {
			if f.high {
				s.symSlot[i], high = high, high+1
			} else {
				s.symSlot[i], low = low, low+1
			}
		}
		if low > symSlots || high > hashSlots || len(s.facets) > 8 {
			panic(fmt.Sprintf("catalogstore: kind %s has too many facets", s.name))
		}
	}
}
