package catalogapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
)

// serviceContractsRoute lists the contracts of a service (spec 002,
// 契約情報の一覧取得): each with its option contracts and its child product
// contracts (with theirs). The contract documents carry the label, the
// associated services (連携サービス) and the accounts as typed fields.
func (a *API) serviceContractsRoute() Route {
	return Route{Method: "GET", Path: "/v1/services/{code}/contracts", Scope: auth.ScopeCustomersRead, Tag: "contracts",
		Handler:     http.HandlerFunc(a.serviceContracts),
		OperationID: "listServiceContractsOfService", Summary: "List the contracts of a service with their options and child product contracts",
		Description: "Every service contract of the service (the parent service, by its code), in registration order, keyset-paged, each with its " +
			"option contracts (`options`: contracts under it whose service is of kind option) and its child product contracts (`product_contracts`, " +
			"each with its own options). Each contract is the whole document: its `label`, its associated services (`associated_services`, 連携サービス: " +
			"code, name and label of each linked service) and its contracted accounts (`accounts`: count and range, overall and per platform). " +
			"Contracts that ended or were cancelled are listed too; `active_on` keeps those whose term contains that day, children included.",
		pathParams: []param{{name: "code", required: true, doc: "the parent service's code"}},
		query: append([]param{
			{name: "customer", doc: "only this customer's contracts"},
			{name: "active_on", format: "date", doc: "only contracts whose term contains this day (YYYY-MM-DD)"},
		}, pageParams...),
		ok: 200, okSchema: "ServiceContractListingPage", okNote: "one page of the service's contracts", statuses: []int{404}}
}

// ListedContract is a contract of a listing with its service's name and the
// option contracts under it.
type ListedContract struct {
	Contract    json.RawMessage   `json:"contract"`
	ServiceName string            `json:"service_name"`
	Options     []*ListedContract `json:"options"`
}

// ServiceContractListing is one contract of a service with its options and
// child product contracts.
type ServiceContractListing struct {
	ListedContract
	ProductContracts []*ListedContract `json:"product_contracts"`
}

func (a *API) serviceContracts(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	code := r.PathValue("code")
	rep := a.store.Replica()
	if s, ok := rep.Get(ten, catalogstore.KindService, code); !ok || s.Deleted {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such service")
		return
	}
	q := r.URL.Query()
	query := catalogstore.Query{Terms: []catalogstore.Term{{Facet: "service", Value: code}}}
	scope := []string{code}
	var errs []httpapi.FieldError
	if q.Has("customer") {
		c := q.Get("customer")
		if c == "" || len(c) > 64 {
			errs = append(errs, httpapi.FieldError{Field: "customer", Reason: "a customer id, 1-64 characters"})
		}
		query.Terms = append(query.Terms, catalogstore.Term{Facet: "customer", Value: c})
		scope = append(scope, "customer="+c)
	}
	if q.Has("active_on") {
		d, err := catalog.ParseDate(q.Get("active_on"))
		if err != nil {
			errs = append(errs, httpapi.FieldError{Field: "active_on", Reason: "must be a day, YYYY-MM-DD"})
		}
		query.ActiveOn = &d
		scope = append(scope, "active_on="+d.String())
	}
	req, perrs := a.pages.Parse(q, page.Scope(ten, "catalog/services/contracts", scope...))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	var after uint64
	if len(req.After) == 1 {
		after, _ = strconv.ParseUint(req.After[0], 10, 64)
	}
	list, more := rep.Search(ten, catalogstore.KindServiceContract, query, after, req.Size)
	now := clock.Now()
	out := httpapi.Page[*ServiceContractListing]{Items: make([]*ServiceContractListing, 0, len(list))}
	for _, e := range list {
		l := &ServiceContractListing{ListedContract: *a.listed(rep, ten, e, now), ProductContracts: []*ListedContract{}}
		for _, child := range a.children(rep, ten, e.ID, query.ActiveOn) {
			lc := a.listed(rep, ten, child, now)
			if a.isOption(rep, ten, child, now) {
				l.Options = append(l.Options, lc)
				continue
			}
			for _, opt := range a.children(rep, ten, child.ID, query.ActiveOn) {
				lc.Options = append(lc.Options, a.listed(rep, ten, opt, now))
			}
			l.ProductContracts = append(l.ProductContracts, lc)
		}
		out.Items = append(out.Items, l)
	}
	if more {
		out.NextPage = a.pages.Next(req, true, strconv.FormatUint(list[len(list)-1].CreatedSeq, 10))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *API) children(rep *catalogstore.Replica, ten, parent string, activeOn *catalog.Date) []catalogstore.Entity {
	list, _ := rep.Search(ten, catalogstore.KindServiceContract,
		catalogstore.Query{Terms: []catalogstore.Term{{Facet: "parent", Value: parent}}, ActiveOn: activeOn}, 0, maxTree)
	return list
}

func (a *API) listed(rep *catalogstore.Replica, ten string, e catalogstore.Entity, now time.Time) *ListedContract {
	name, _ := serviceOf(rep, ten, e.Value.(*catalog.ServiceContract), now)
	return &ListedContract{Contract: render(e, false), ServiceName: name, Options: []*ListedContract{}}
}

func (a *API) isOption(rep *catalogstore.Replica, ten string, e catalogstore.Entity, now time.Time) bool {
	_, kind := serviceOf(rep, ten, e.Value.(*catalog.ServiceContract), now)
	return kind == catalog.KindOption
}

// serviceOf returns the name of the contract's service and its kind in the
// service version that applies on the contract's start (or now, if none
// did).
func serviceOf(rep *catalogstore.Replica, ten string, sc *catalog.ServiceContract, now time.Time) (string, catalog.ServiceKind) {
	s, ok := rep.Get(ten, catalogstore.KindService, sc.Service)
	if !ok || s.Deleted {
		return "", catalog.KindService
	}
	svc := s.Value.(*catalog.Service)
	validity := func(v *catalog.ServiceVersion) catalog.Validity { return v.Validity }
	v, found := catalog.VersionAt(svc.Versions, validity, sc.Start.In(time.UTC))
	if !found {
		v, found = catalog.VersionAt(svc.Versions, validity, now)
	}
	if found && v.Kind == catalog.KindOption {
		return svc.Name, catalog.KindOption
	}
	return svc.Name, catalog.KindService
}
