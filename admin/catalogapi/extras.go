package catalogapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
)

// maxTree bounds how many contracts of one kind a contract tree lists.
const maxTree = 10000

func (a *API) extraRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/v1/customers/{id}/contracts", Scope: auth.ScopeCustomersRead, Tag: "contracts",
			Handler:     http.HandlerFunc(a.contractTree),
			OperationID: "getCustomerContracts", Summary: "List a customer's contracts as a tree",
			Description: "The customer's basic contracts, discount contracts and service contracts, each parent service contract with its child " +
				"contracts (`children`) and options (`options`), recursively, as in a contract listing: the parent service, its child " +
				"services with their options. Contracts that ended or were cancelled are listed too; `active_on` keeps those whose term contains that day.",
			pathParams: []param{{name: "id", required: true, doc: "the customer's id"}},
			query:      []param{{name: "active_on", format: "date", doc: "only contracts whose term contains this day (YYYY-MM-DD)"}},
			ok:         200, okSchema: "ContractTree", okNote: "the customer's contracts", statuses: []int{404}},
		{Method: "GET", Path: "/v1/stats/customers", Scope: auth.ScopeCustomersRead, Tag: "customers",
			Handler:     http.HandlerFunc(a.customerStats),
			OperationID: "getCustomerStats", Summary: "Count the tenant's customers (顧客数照会)",
			Description: "How many customers the tenant has, and how many of them are active and suspended.",
			ok:          200, okSchema: "CustomerStats", okNote: "the customer counts"},
		a.serviceContractsRoute(),
	}
}

// ContractNode is a service contract with the contracts under it.
type ContractNode struct {
	Contract    json.RawMessage `json:"contract"`
	ServiceName string          `json:"service_name"`
	ServiceKind string          `json:"service_kind"`
	Children    []*ContractNode `json:"children"`
	Options     []*ContractNode `json:"options"`
}

// ContractTree is the body of GET /v1/customers/{id}/contracts.
type ContractTree struct {
	Customer          string            `json:"customer"`
	BasicContracts    []json.RawMessage `json:"basic_contracts"`
	ServiceContracts  []*ContractNode   `json:"service_contracts"`
	DiscountContracts []json.RawMessage `json:"discount_contracts"`
}

func (a *API) contractTree(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	q := r.URL.Query()
	rep := a.store.Replica()
	if _, ok := rep.CustomerStatus(ten, id); !ok {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such customer")
		return
	}
	query := catalogstore.Query{Terms: []catalogstore.Term{{Facet: "customer", Value: id}}}
	if s := q.Get("active_on"); s != "" {
		d, err := catalog.ParseDate(s)
		if err != nil {
			httpapi.InvalidQuery(w, httpapi.FieldError{Field: "active_on", Reason: "must be a day, YYYY-MM-DD"})
			return
		}
		query.ActiveOn = &d
	}
	out := ContractTree{Customer: id, BasicContracts: []json.RawMessage{}, ServiceContracts: []*ContractNode{}, DiscountContracts: []json.RawMessage{}}
	basics, _ := rep.Search(ten, catalogstore.KindBasicContract, query, 0, maxTree)
	for _, e := range basics {
		out.BasicContracts = append(out.BasicContracts, render(e, false))
	}
	discounts, _ := rep.Search(ten, catalogstore.KindDiscountContract, query, 0, maxTree)
	for _, e := range discounts {
		out.DiscountContracts = append(out.DiscountContracts, render(e, false))
	}
	contracts, _ := rep.Search(ten, catalogstore.KindServiceContract, query, 0, maxTree)
	nodes := make(map[string]*ContractNode, len(contracts))
	now := clock.Now()
	for _, e := range contracts {
		sc := e.Value.(*catalog.ServiceContract)
		n := &ContractNode{Contract: render(e, false), ServiceKind: string(catalog.KindService), Children: []*ContractNode{}, Options: []*ContractNode{}}
		if s, ok := rep.Get(ten, catalogstore.KindService, sc.Service); ok && !s.Deleted {
			svc := s.Value.(*catalog.Service)
			n.ServiceName = svc.Name
			// The kind of the service version that applies on the contract's
			// start (or now, if none did).
			at := sc.Start.In(time.UTC)
			v, found := catalog.VersionAt(svc.Versions, func(v *catalog.ServiceVersion) catalog.Validity { return v.Validity }, at)
			if !found {
				v, found = catalog.VersionAt(svc.Versions, func(v *catalog.ServiceVersion) catalog.Validity { return v.Validity }, now)
			}
			if found && v.Kind == catalog.KindOption {
				n.ServiceKind = string(catalog.KindOption)
			}
		}
		nodes[e.ID] = n
	}
	for _, e := range contracts {
		sc := e.Value.(*catalog.ServiceContract)
		n := nodes[e.ID]
		parent := nodes[sc.Parent]
		switch {
		case sc.Parent == "" || parent == nil: // a root, or a child whose parent is filtered out
			out.ServiceContracts = append(out.ServiceContracts, n)
		case n.ServiceKind == string(catalog.KindOption):
			parent.Options = append(parent.Options, n)
		default:
			parent.Children = append(parent.Children, n)
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// CustomerStats is the body of GET /v1/stats/customers.
type CustomerStats struct {
	Customers int `json:"customers"`
	Active    int `json:"active"`
	Suspended int `json:"suspended"`
}

func (a *API) customerStats(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	rep := a.store.Replica()
	count := func(status string) int {
		return rep.Count(ten, catalogstore.KindCustomer, catalogstore.Query{Terms: []catalogstore.Term{{Facet: "status", Value: status}}})
	}
	httpapi.WriteJSON(w, http.StatusOK, CustomerStats{
		Customers: rep.Count(ten, catalogstore.KindCustomer, catalogstore.Query{}),
		Active:    count("active"), Suspended: count("suspended"),
	})
}
