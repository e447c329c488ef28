// Package catalogapi serves the admin API of the catalogue: customers,
// groups, basic/service/discount contracts and the masters (service, plan,
// fee, element, rate table, discount table), with the same operations for
// every kind — create, update (If-Match), get (also as of a past time),
// search, count, delete, history — plus the kind-specific ones: versions and
// end of application (適用終了) for masters, cancellation (解約) for
// contracts, group members, a customer's contract tree and the customer
// count. The handlers are written once over the kind registry of package
// catalogstore; Routes lists them with what the OpenAPI document needs.
package catalogapi

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
)

// API is the catalogue's HTTP handlers.
type API struct {
	store *catalogstore.Store
	pages *page.Codec
	log   *slog.Logger
}

// New returns the catalogue API over store.
func New(store *catalogstore.Store, pages *page.Codec, log *slog.Logger) *API {
	if log == nil {
		log = slog.Default()
	}
	return &API{store: store, pages: pages, log: log}
}

// resource is one kind as the API exposes it.
type resource struct {
	kind   catalogstore.Kind
	path   string // URL segment: "rate-tables"
	param  string // path parameter of the id: "code" or "id"
	schema string // OpenAPI component of the document: "RateTable"
	title  string // "rate table (料金表マスタ)"
	names  string // the plain name of several, for summaries: "rate-table masters", "groups of customers"
	read   auth.Scope
	write  auth.Scope
	tag    string
}

var resources = []*resource{
	{kind: catalogstore.KindCustomer, path: "customers", param: "id", schema: "Customer", title: "customer (顧客)", names: "customers",
		read: auth.ScopeCustomersRead, write: auth.ScopeCustomersWrite, tag: "customers"},
	{kind: catalogstore.KindGroup, path: "groups", param: "id", schema: "Group", title: "group of customers (グループ)", names: "groups of customers",
		read: auth.ScopeCustomersRead, write: auth.ScopeCustomersWrite, tag: "customers"},
	{kind: catalogstore.KindBasicContract, path: "basic-contracts", param: "id", schema: "BasicContract", title: "basic contract (基本契約)", names: "basic contracts",
		read: auth.ScopeCustomersRead, write: auth.ScopeCustomersWrite, tag: "contracts"},
	{kind: catalogstore.KindServiceContract, path: "service-contracts", param: "id", schema: "ServiceContract", title: "service contract with its price contracts (サービス契約／料金契約)", names: "service contracts with their price contracts",
		read: auth.ScopeCustomersRead, write: auth.ScopeCustomersWrite, tag: "contracts"},
	{kind: catalogstore.KindDiscountContract, path: "discount-contracts", param: "id", schema: "DiscountContract", title: "discount contract (割引契約)", names: "discount contracts",
		read: auth.ScopeCustomersRead, write: auth.ScopeCustomersWrite, tag: "contracts"},
	{kind: catalogstore.KindService, path: "services", param: "code", schema: "Service", title: "service master (サービスマスタ)", names: "service masters",
		read: auth.ScopeCatalogRead, write: auth.ScopeCatalogWrite, tag: "masters"},
	{kind: catalogstore.KindPlan, path: "plans", param: "code", schema: "Plan", title: "price plan master, fixed or metered (料金プランマスタ)", names: "price plan masters",
		read: auth.ScopeCatalogRead, write: auth.ScopeCatalogWrite, tag: "masters"},
	{kind: catalogstore.KindFee, path: "fees", param: "code", schema: "Fee", title: "fee master (料金マスタ)", names: "fee masters",
		read: auth.ScopeCatalogRead, write: auth.ScopeCatalogWrite, tag: "masters"},
	{kind: catalogstore.KindElement, path: "elements", param: "code", schema: "Element", title: "calculation-element master (計算要素マスタ)", names: "calculation-element masters",
		read: auth.ScopeCatalogRead, write: auth.ScopeCatalogWrite, tag: "masters"},
	{kind: catalogstore.KindRateTable, path: "rate-tables", param: "code", schema: "RateTable", title: "rate-table master (料金表マスタ)", names: "rate-table masters",
		read: auth.ScopeCatalogRead, write: auth.ScopeCatalogWrite, tag: "masters"},
	{kind: catalogstore.KindDiscountTable, path: "discount-tables", param: "code", schema: "DiscountTable", title: "discount-table master (割引表マスタ)", names: "discount-table masters",
		read: auth.ScopeCatalogRead, write: auth.ScopeCatalogWrite, tag: "masters"},
}

// short is the resource's plain name for summaries ("rate table"); names is
// its plural, written out: a phrase such as "group of customers" is not
// pluralised by appending an s.
func (r *resource) short() string {
	if i := strings.IndexAny(r.title, "(,"); i > 0 {
		return strings.TrimSpace(r.title[:i])
	}
	return r.title
}

// Route is one route of the catalogue API with what its OpenAPI operation
// says.
type Route struct {
	Method      string // GET, POST, PUT, DELETE
	Path        string // OpenAPI path template, e.g. /v1/plans/{code}
	Scope       auth.Scope
	Write       bool // a state-changing call: mount with Idempotency-Key support
	Handler     http.Handler
	OperationID string
	Summary     string
	Description string
	Tag         string

	pathParams []param
	query      []param
	body       string // request body schema ("" for none)
	bodyNote   string
	ok         int    // success status
	okSchema   string // success body schema
	okNote     string
	statuses   []int // error statuses besides 400, 401, 403, 429, 503
	etag       bool  // the success answer carries an ETag
	ifMatch    int   // 0: no If-Match; 1: optional; 2: required (428 without)
}

// Pattern is the route's http.ServeMux pattern.
func (r Route) Pattern() string { return r.Method + " " + r.Path }

type param struct {
	name, doc, format string
	required          bool
	enum              []string
}

// Routes lists every route of the catalogue API.
func (a *API) Routes() []Route {
	var out []Route
	for _, res := range resources {
		out = append(out, a.kindRoutes(res)...)
	}
	out = append(out, a.extraRoutes()...)
	for i := range out {
		out[i].Handler = knownQuery(out[i].QueryParams(), out[i].Handler)
	}
	return out
}

// QueryParams are the names of the route's query parameters, as its OpenAPI
// operation documents them; a request with any other is refused.
func (r Route) QueryParams() []string {
	out := make([]string, len(r.query))
	for i, p := range r.query {
		out[i] = p.name
	}
	return out
}

// knownQuery refuses, before h runs, a request with a query parameter that
// is not one of known.
func knownQuery(known []string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpapi.KnownQuery(w, r, known...) {
			h.ServeHTTP(w, r)
		}
	})
}
