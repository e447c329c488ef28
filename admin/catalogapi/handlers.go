package catalogapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// kindRoutes are the routes every kind has, plus its kind-specific ones.
func (a *API) kindRoutes(res *resource) []Route {
	base := "/v1/" + res.path
	item := base + "/{" + res.param + "}"
	one, many := res.schema, plural(res.schema)
	idParam := param{name: res.param, required: true, doc: "the " + res.kind.IDField() + " of the " + res.short()}
	var filters []param
	for _, f := range res.kind.Filters() {
		filters = append(filters, param{name: f.Name, doc: f.Doc, format: f.Format})
	}
	routes := []Route{
		{Method: "POST", Path: base, Scope: res.write, Write: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.create(w, r, res) }),
			OperationID: "create" + one, Summary: "Register a " + res.short(),
			Description: "Registers a " + res.title + ". Its `" + res.kind.IDField() + "` must not be in use (a deleted one may be registered again; its history continues). " +
				"The answer carries the new revision as `ETag`.",
			body: one + "Input", ok: 201, okSchema: one + "Entity", okNote: "the registered " + res.short() + " at revision 1 (or the next revision after a delete)",
			statuses: []int{409, 413, 422}, etag: true},
		{Method: "GET", Path: base, Scope: res.read, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.search(w, r, res) }),
			OperationID: "search" + many, Summary: "Search " + res.names,
			Description: "Live " + res.names + " matching every filter given, in registration order, keyset-paged.",
			query:       append(append([]param(nil), filters...), pageParams...), ok: 200, okSchema: one + "Page", okNote: "one page of " + res.names},
		{Method: "GET", Path: base + "/count", Scope: res.read, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.count(w, r, res) }),
			OperationID: "count" + many, Summary: "Count " + res.names,
			Description: "How many live " + res.names + " match every filter given (件数検索).",
			query:       filters, ok: 200, okSchema: "Count", okNote: "the number of matching " + res.names},
		{Method: "GET", Path: item, Scope: res.read, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.get(w, r, res) }),
			OperationID: "get" + one, Summary: "Get a " + res.short(),
			Description: "The current revision, or with `as_of` the revision that was current at that instant (a deleted one is then returned with `deleted: true`). `ETag` is the revision.",
			pathParams:  []param{idParam}, query: []param{{name: "as_of", format: "date-time", doc: "read the revision current at this instant (RFC 3339)"}},
			ok: 200, okSchema: one + "Entity", okNote: "the " + res.short(), statuses: []int{404}, etag: true},
		{Method: "PUT", Path: item, Scope: res.write, Write: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.update(w, r, res) }),
			OperationID: "update" + one, Summary: "Update a " + res.short(),
			Description: "Replaces the document with a new revision. The revision it modifies is required, as `If-Match` (the `ETag` of a read) or as the body's `revision`: " +
				"if the " + res.short() + " changed since, the answer is 409 and nothing is written. A document equal to the current one writes nothing.",
			pathParams: []param{idParam}, body: one + "Input", ok: 200, okSchema: one + "Entity", okNote: "the " + res.short() + " at its new revision",
			statuses: []int{404, 409, 413, 422, 428}, etag: true, ifMatch: 2},
		{Method: "DELETE", Path: item, Scope: res.write, Write: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.remove(w, r, res) }),
			OperationID: "delete" + one, Summary: "Delete a " + res.short(),
			Description: "Writes a tombstone revision: the " + res.short() + " is gone from searches and reads, its history stays. `If-Match` (or `?revision=`) is required. " +
				"Refused with 409 `still_referenced`, naming them, while other entities reference it." + deleteContractRule(res),
			pathParams: []param{idParam}, query: []param{{name: "revision", doc: "the revision being deleted, when If-Match is not sent"}},
			ok: 200, okSchema: one + "Entity", okNote: "the tombstone revision (`deleted: true`)", statuses: []int{404, 409, 413, 422, 428}, ifMatch: 2},
		{Method: "GET", Path: item + "/revisions", Scope: res.read, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.history(w, r, res) }),
			OperationID: "list" + one + "Revisions", Summary: "List the revisions of a " + res.short(),
			Description: "Every revision, oldest first, with who changed it and when; tombstones included.",
			pathParams:  []param{idParam}, query: pageParams, ok: 200, okSchema: one + "Page", okNote: "one page of revisions", statuses: []int{404}},
	}
	if res.kind.IsMaster() {
		routes = append(routes,
			Route{Method: "POST", Path: item + "/versions", Scope: res.write, Write: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.addVersion(w, r, res) }),
				OperationID: "add" + one + "Version", Summary: "Add a version to a " + res.short(),
				Description: "Adds an effective-dated version (追加). If it starts while an open-ended version applies, that version is ended where the new one starts: " +
					"a new price from a date is this one call. The usage of each instant is priced with the version valid then.",
				pathParams: []param{idParam}, body: one + "Version", ok: 200, okSchema: one + "Entity", okNote: "the " + res.short() + " with the new version",
				statuses: []int{404, 409, 413, 422}, etag: true, ifMatch: 1},
			Route{Method: "POST", Path: item + "/versions/{n}/end", Scope: res.write, Write: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.endVersion(w, r, res) }),
				OperationID: "end" + one + "Version", Summary: "End a " + res.short() + " version's application",
				Description: "Ends the application of version `n` (適用終了) at `valid_to`, keeping the version and the history: it no longer applies from then on.",
				pathParams:  []param{idParam, {name: "n", required: true, format: "int", doc: "the version's position in `versions`, from 0"}},
				body:        "EndVersionRequest", ok: 200, okSchema: one + "Entity", okNote: "the " + res.short() + " with the version ended",
				statuses: []int{404, 409, 413, 422}, etag: true, ifMatch: 1})
	}
	if res.kind == catalogstore.KindServiceContract || res.kind == catalogstore.KindDiscountContract {
		desc := "Cancels the contract (解約): `end_date` becomes its last day and `cancelled` is set; price plan terms are cut to that day. The contract and its history stay."
		if res.kind == catalogstore.KindServiceContract {
			desc += " Child contracts and options that run past that day are cancelled with it."
		}
		routes = append(routes, Route{Method: "POST", Path: item + "/cancel", Scope: res.write, Write: true,
			Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.cancel(w, r, res) }),
			OperationID: "cancel" + one, Summary: "Cancel a " + res.short(), Description: desc,
			pathParams: []param{idParam}, body: "CancelRequest", ok: 200, okSchema: one + "Entity", okNote: "the cancelled contract",
			statuses: []int{404, 409, 413, 422}, etag: true, ifMatch: 1})
	}
	if res.kind == catalogstore.KindGroup {
		memberParams := []param{idParam, {name: "customerId", required: true, doc: "the customer's id"}}
		routes = append(routes,
			Route{Method: "POST", Path: item + "/members/{customerId}", Scope: res.write, Write: true,
				Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.member(w, r, res, true) }),
				OperationID: "addGroupMember", Summary: "Add a customer to a group",
				Description: "Adds the customer to the group's members (a member already listed changes nothing). Takes no body.",
				pathParams:  memberParams, ok: 200, okSchema: one + "Entity", okNote: "the group", statuses: []int{404, 409, 413, 422}, etag: true, ifMatch: 1},
			Route{Method: "DELETE", Path: item + "/members/{customerId}", Scope: res.write, Write: true,
				Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.member(w, r, res, false) }),
				OperationID: "removeGroupMember", Summary: "Remove a customer from a group",
				Description: "Removes the customer from the group's members (one not listed changes nothing).",
				pathParams:  memberParams, ok: 200, okSchema: one + "Entity", okNote: "the group", statuses: []int{404, 409, 413, 422}, etag: true, ifMatch: 1})
	}
	for i := range routes {
		routes[i].Tag = res.tag
	}
	return routes
}

// deleteContractRule documents, on a contract kind's DELETE route, that a
// contract that has taken effect is ended rather than deleted.
func deleteContractRule(res *resource) string {
	var instead string
	switch res.kind {
	case catalogstore.KindServiceContract, catalogstore.KindDiscountContract:
		instead = "cancel it instead (解約: `POST /v1/" + res.path + "/{id}/cancel` with its last day as `end_date`)"
	case catalogstore.KindBasicContract:
		instead = "end it instead by setting its `end_date` (`PUT /v1/basic-contracts/{id}`), after cancelling its service contracts"
	default:
		return ""
	}
	return " A contract that has taken effect may have produced charges and is never deleted: when its `start_date` has come in its time zone " +
		"(the basic contract's; for a discount contract, that of the customer's basic contract whose day begins first) by now plus the ingest's allowed " +
		"future skew of event times (`--max-future-skew`, 24 h), the delete is refused with 409 `contract_in_effect` and nothing is written — " +
		instead + ". Deleting it would leave its usage lines, fixed fees and discounts in the charges with nothing to re-price or correct them. " +
		"A contract that starts later has no charges yet and can be deleted."
}

var pageParams = []param{{name: "pageSize"}, {name: "nextPage"}}

func plural(s string) string {
	if strings.HasSuffix(s, "s") {
		return s + "es"
	}
	return s + "s"
}

// ---- handlers ----

func actor(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok {
		return "client:" + p.ClientID
	}
	return "api"
}

func (a *API) create(w http.ResponseWriter, r *http.Request, res *resource) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	doc, _, ok := decodeDocument(w, r, res.kind)
	if !ok {
		return
	}
	e, err := a.store.Create(r.Context(), ten, actor(r), res.kind, doc)
	if err != nil {
		a.failFor(w, r, res, res.kind.ID(doc), err)
		return
	}
	w.Header().Set("Location", "/v1/"+res.path+"/"+url.PathEscape(e.ID))
	a.writeEntity(w, r, http.StatusCreated, e)
}

func (a *API) get(w http.ResponseWriter, r *http.Request, res *resource) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	id := r.PathValue(res.param)
	q := r.URL.Query()
	var e catalogstore.Entity
	var err error
	if s := q.Get("as_of"); s != "" {
		at, perr := time.Parse(time.RFC3339, s)
		if perr != nil {
			httpapi.InvalidQuery(w, httpapi.FieldError{Field: "as_of", Reason: "must be an RFC 3339 timestamp"})
			return
		}
		e, err = a.store.AsOf(r.Context(), ten, res.kind, id, at)
	} else {
		e, err = a.store.Get(r.Context(), ten, res.kind, id)
	}
	if err != nil {
		a.fail(w, r, res, err)
		return
	}
	a.writeEntity(w, r, http.StatusOK, e)
}

func (a *API) update(w http.ResponseWriter, r *http.Request, res *resource) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	id := r.PathValue(res.param)
	doc, bodyRev, ok := decodeDocument(w, r, res.kind)
	if !ok {
		return
	}
	if got := res.kind.ID(doc); got != "" && got != id {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the body names another entity than the path",
			httpapi.FieldError{Field: res.kind.IDField(), Reason: fmt.Sprintf("is %q but the path names %q", got, id)})
		return
	}
	expect, ok := precondition(w, r, bodyRev, true)
	if !ok {
		return
	}
	e, err := a.store.Update(r.Context(), ten, actor(r), res.kind, id, expect, doc)
	if err != nil {
		a.fail(w, r, res, err)
		return
	}
	a.writeEntity(w, r, http.StatusOK, e)
}

func (a *API) remove(w http.ResponseWriter, r *http.Request, res *resource) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var qrev *uint64
	if s := q.Get("revision"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			httpapi.InvalidQuery(w, httpapi.FieldError{Field: "revision", Reason: "must be a revision number"})
			return
		}
		qrev = &n
	}
	expect, ok := precondition(w, r, qrev, true)
	if !ok {
		return
	}
	e, err := a.store.Delete(r.Context(), ten, actor(r), res.kind, r.PathValue(res.param), expect)
	if err != nil {
		a.fail(w, r, res, err)
		return
	}
	a.writeEntity(w, r, http.StatusOK, e)
}

func (a *API) history(w http.ResponseWriter, r *http.Request, res *resource) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	id := r.PathValue(res.param)
	req, errs := a.pages.Parse(r.URL.Query(), page.Scope(ten, "catalog/"+res.path+"/revisions", id))
	if len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	var after uint64
	if len(req.After) == 1 {
		after, _ = strconv.ParseUint(req.After[0], 10, 64)
	}
	list, err := a.store.History(r.Context(), ten, res.kind, id, after, req.Size+1)
	if err != nil {
		a.fail(w, r, res, err)
		return
	}
	if len(list) == 0 && after == 0 {
		a.fail(w, r, res, catalogstore.ErrNotFound)
		return
	}
	more := len(list) > req.Size
	if more {
		list = list[:req.Size]
	}
	out := pageBody{Items: make([]json.RawMessage, 0, len(list))}
	for _, e := range list {
		out.Items = append(out.Items, render(e, true))
	}
	if more {
		out.NextPage = a.pages.Next(req, true, strconv.FormatUint(list[len(list)-1].Revision, 10))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

type pageBody struct {
	Items    []json.RawMessage `json:"items"`
	NextPage string            `json:"nextPage,omitempty"`
}

func (a *API) search(w http.ResponseWriter, r *http.Request, res *resource) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	query, scope, errs := a.parseFilters(r.Context(), ten, res, q)
	req, perrs := a.pages.Parse(q, page.Scope(ten, "catalog/"+res.path, scope...))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	var after uint64
	if len(req.After) == 1 {
		after, _ = strconv.ParseUint(req.After[0], 10, 64)
	}
	list, more := a.store.Replica().Search(ten, res.kind, query, after, req.Size)
	out := pageBody{Items: make([]json.RawMessage, 0, len(list))}
	for _, e := range list {
		e, err := a.store.Open(r.Context(), ten, e)
		if err != nil {
			a.fail(w, r, res, err)
			return
		}
		out.Items = append(out.Items, render(e, false))
	}
	if more {
		out.NextPage = a.pages.Next(req, true, strconv.FormatUint(list[len(list)-1].CreatedSeq, 10))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *API) count(w http.ResponseWriter, r *http.Request, res *resource) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	query, _, errs := a.parseFilters(r.Context(), ten, res, r.URL.Query())
	if len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]int{"count": a.store.Replica().Count(ten, res.kind, query)})
}

// parseFilters reads the search filters of res from q; it returns the query,
// the filters as cursor scope parts, and what is wrong with them.
func (a *API) parseFilters(ctx context.Context, ten string, res *resource, q url.Values) (catalogstore.Query, []string, []httpapi.FieldError) {
	var query catalogstore.Query
	var errs []httpapi.FieldError
	var scope []string
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "pageSize" || name == "nextPage" {
			continue
		}
		vals := q[name]
		if len(vals) != 1 {
			errs = append(errs, httpapi.FieldError{Field: name, Reason: "give it once"})
			continue
		}
		err := a.store.Filter(ctx, ten, res.kind, name, vals[0], &query)
		switch {
		case errors.Is(err, catalogstore.ErrUnknownFilter):
			var known []string
			for _, f := range res.kind.Filters() {
				known = append(known, f.Name)
			}
			errs = append(errs, httpapi.FieldError{Field: name, Reason: "unknown filter; " + res.path + " filter by " + strings.Join(known, ", ")})
		case err != nil:
			errs = append(errs, httpapi.FieldError{Field: name, Reason: err.Error()})
		default:
			scope = append(scope, name+"="+vals[0])
		}
	}
	return query, scope, errs
}

func (a *API) addVersion(w http.ResponseWriter, r *http.Request, res *resource) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	a.modify(w, r, res, func(v any) error { return catalogstore.AddVersion(res.kind, v, body) })
}

func (a *API) endVersion(w http.ResponseWriter, r *http.Request, res *resource) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_path", "n must be a version's position from 0", httpapi.FieldError{Field: "n", Reason: "must be a whole number from 0"})
		return
	}
	var req struct {
		ValidTo *time.Time `json:"valid_to"`
	}
	if !decodeStrict(w, r, &req) {
		return
	}
	if req.ValidTo == nil {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "valid_to is required", httpapi.FieldError{Field: "valid_to", Reason: "is required"})
		return
	}
	a.modify(w, r, res, func(v any) error { return catalogstore.EndVersion(res.kind, v, n, *req.ValidTo) })
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request, res *resource) {
	var req struct {
		EndDate *catalog.Date `json:"end_date"`
	}
	if !decodeStrict(w, r, &req) {
		return
	}
	if req.EndDate == nil {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "end_date is required", httpapi.FieldError{Field: "end_date", Reason: "is required"})
		return
	}
	if res.kind == catalogstore.KindServiceContract {
		ten, ok := httpapi.RequestTenant(w, r)
		if !ok {
			return
		}
		expect, ok := precondition(w, r, nil, false)
		if !ok {
			return
		}
		id := r.PathValue(res.param)
		if _, err := a.store.Transact(r.Context(), ten, actor(r), func(tx *catalogstore.Tx) error {
			return tx.CancelServiceContract(id, expect, *req.EndDate)
		}); err != nil {
			a.fail(w, r, res, err)
			return
		}
		e, err := a.store.Get(r.Context(), ten, res.kind, id)
		if err != nil {
			a.fail(w, r, res, err)
			return
		}
		a.writeEntity(w, r, http.StatusOK, e)
		return
	}
	a.modify(w, r, res, func(v any) error { return catalogstore.Cancel(v, *req.EndDate) })
}

func (a *API) member(w http.ResponseWriter, r *http.Request, res *resource, add bool) {
	customer := r.PathValue("customerId")
	a.modify(w, r, res, func(v any) error {
		g := v.(*catalog.Group)
		i := -1
		for j, m := range g.Members {
			if m == customer {
				i = j
			}
		}
		switch {
		case add && i < 0:
			g.Members = append(g.Members, customer)
		case !add && i >= 0:
			g.Members = append(g.Members[:i], g.Members[i+1:]...)
		}
		return nil
	})
}

// modify runs a read-modify-write of one entity under the store's lock, so
// that it needs no If-Match (one is checked when given).
func (a *API) modify(w http.ResponseWriter, r *http.Request, res *resource, fn func(v any) error) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	expect, ok := precondition(w, r, nil, false)
	if !ok {
		return
	}
	e, err := a.store.Modify(r.Context(), ten, actor(r), res.kind, r.PathValue(res.param), expect, fn)
	if err != nil {
		a.fail(w, r, res, err)
		return
	}
	a.writeEntity(w, r, http.StatusOK, e)
}

// ---- bodies, preconditions, answers ----

// metaFields are read-only fields of an answer that a client may send back
// in an update; they are ignored (revision is taken as the precondition).
var metaFields = []string{"created_at", "changed_at", "changed_by", "deleted"}

// decodeDocument reads a document of kind k: a JSON object of exactly its
// fields, plus optionally the answer's read-only fields and "revision".
func decodeDocument(w http.ResponseWriter, r *http.Request, k catalogstore.Kind) (any, *uint64, bool) {
	body, ok := readBody(w, r)
	if !ok {
		return nil, nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		reason := "must be a JSON object"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			reason = "malformed JSON: " + se.Error()
		}
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body must be a JSON object",
			httpapi.FieldError{Reason: reason})
		return nil, nil, false
	}
	var errs []httpapi.FieldError
	var rev *uint64
	if raw, has := fields["revision"]; has {
		var n uint64
		if err := json.Unmarshal(raw, &n); err != nil {
			errs = append(errs, httpapi.FieldError{Field: "revision", Reason: "must be a revision number"})
		}
		rev = &n
	}
	doc := k.New()
	if err := catalog.DecodeJSON(documentMembers(body), doc); err != nil {
		var de *catalog.DecodeError
		if !errors.As(err, &de) {
			httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is invalid", jsonFieldError(err))
			return nil, nil, false
		}
		// Name what is wrong with the fields that could be read too, so
		// that one answer lists every problem of the document itself
		// (references are checked once it is valid).
		errs = append(errs, decodeErrors(de)...)
		var ve *catalog.ValidationError
		if errors.As(k.Validate(doc), &ve) {
			for _, f := range ve.Fields {
				if !de.Covers(f.Field) {
					errs = append(errs, httpapi.FieldError{Field: f.Field, Reason: f.Reason})
				}
			}
		}
	}
	if len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is invalid; errors names every problem", errs...)
		return nil, nil, false
	}
	return doc, rev, true
}

// documentMembers returns a JSON object (body, which is one) without
// "revision" and the answer's read-only fields, its other members in their
// order.
func documentMembers(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	out := []byte{'{'}
	if _, err := dec.Token(); err != nil {
		return body
	}
	for dec.More() {
		key, err := dec.Token()
		var val json.RawMessage
		if err != nil || dec.Decode(&val) != nil {
			return body
		}
		if key == "revision" || slices.Contains(metaFields, key.(string)) {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		name, _ := json.Marshal(key)
		out = append(append(append(out, name...), ':'), val...)
	}
	return append(out, '}')
}

func decodeErrors(de *catalog.DecodeError) []httpapi.FieldError {
	errs := make([]httpapi.FieldError, len(de.Fields))
	for i, f := range de.Fields {
		errs[i] = httpapi.FieldError{Field: f.Field, Reason: f.Reason}
	}
	return errs
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpapi.WriteProblem(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the request body is larger than %d bytes", maxBody))
			return nil, false
		}
		httpapi.WriteProblem(w, http.StatusBadRequest, "body_unreadable", "the request body could not be read")
		return nil, false
	}
	return body, true
}

// decodeStrict reads a small JSON object with no unknown fields.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	if err := catalog.DecodeJSON(body, v); err != nil {
		var de *catalog.DecodeError
		if errors.As(err, &de) {
			httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is invalid; errors names every problem", decodeErrors(de)...)
		} else {
			httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is invalid", jsonFieldError(err))
		}
		return false
	}
	return true
}

// jsonFieldError describes a body that is not one JSON value.
func jsonFieldError(err error) httpapi.FieldError {
	return httpapi.FieldError{Reason: "malformed JSON: " + err.Error()}
}

// precondition reads the revision a write modifies: If-Match (an ETag of a
// read, or * for "any revision"), else fallback (the body's revision or a
// query parameter). Without one, required answers 428.
func precondition(w http.ResponseWriter, r *http.Request, fallback *uint64, required bool) (*uint64, bool) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	switch {
	case h == "*":
		return nil, true
	case h != "":
		v := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_precondition", "If-Match must be the ETag of a read (a revision)",
				httpapi.FieldError{Field: "header:If-Match", Reason: "must be a quoted revision number, e.g. \"3\", or *"})
			return nil, false
		}
		return &n, true
	case fallback != nil:
		return fallback, true
	case required:
		httpapi.WriteProblem(w, http.StatusPreconditionRequired, "precondition_required",
			"send the revision you are modifying, as If-Match (the ETag of your read) or in the body as revision, so that a concurrent change is not overwritten",
			httpapi.FieldError{Field: "header:If-Match", Reason: "is required"})
		return nil, false
	}
	return nil, true
}

func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

func (a *API) writeEntity(w http.ResponseWriter, r *http.Request, status int, e catalogstore.Entity) {
	if !e.Deleted {
		w.Header().Set("ETag", etag(e.Revision))
	}
	httpapi.WriteJSON(w, status, render(e, e.Deleted))
}

// render writes an entity as the API shows it: its document's fields with
// revision, created_at, changed_at and changed_by (and deleted, when asked).
func render(e catalogstore.Entity, withDeleted bool) json.RawMessage {
	doc, err := json.Marshal(e.Value)
	if err != nil || len(doc) < 2 || doc[0] != '{' {
		doc = []byte("{}")
	}
	by, _ := json.Marshal(e.ChangedBy)
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"revision":%d,"created_at":"%s","changed_at":"%s","changed_by":%s`, e.Revision,
		e.CreatedAt.UTC().Format(time.RFC3339), e.ChangedAt.UTC().Format(time.RFC3339), by)
	if withDeleted {
		fmt.Fprintf(&b, `,"deleted":%t`, e.Deleted)
	}
	if len(doc) > 2 {
		b.WriteByte(',')
		b.Write(doc[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes()
}

// fail maps a store error to a problem answer; problems of the entity the
// path names are reported with the entity's own field names.
func (a *API) fail(w http.ResponseWriter, r *http.Request, res *resource, err error) {
	a.failFor(w, r, res, r.PathValue(res.param), err)
}

// failFor is fail for the entity id (the body's, when registering).
func (a *API) failFor(w http.ResponseWriter, r *http.Request, res *resource, id string, err error) {
	var (
		ce *catalogstore.ConflictError
		ve *catalogstore.ValidationError
		re *catalogstore.ReferencedError
		vv *catalogstore.VersionError
		ie *catalogstore.InEffectError
		le *catalogstore.LimitError
		de *catalog.DecodeError
	)
	switch {
	case errors.Is(err, catalogstore.ErrNotFound):
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such "+res.short()+" in this tenant")
	case errors.Is(err, catalogstore.ErrExists):
		httpapi.WriteProblem(w, http.StatusConflict, "already_exists", err.Error(),
			httpapi.FieldError{Field: res.kind.IDField(), Reason: "already in use"})
	case errors.As(err, &ce):
		if ce.Current > 0 {
			w.Header().Set("ETag", etag(ce.Current))
		}
		httpapi.WriteProblem(w, http.StatusConflict, "revision_conflict", ce.Error()+"; read it again and reapply your change",
			httpapi.FieldError{Field: "header:If-Match", Reason: fmt.Sprintf("revision %d is not the current revision %d", ce.Expected, ce.Current)})
	case errors.As(err, &ve):
		errs := make([]httpapi.FieldError, 0, len(ve.Errors))
		for _, f := range ve.Errors {
			field := f.Field
			if f.Kind != res.kind || f.ID != id {
				field = refField(f.Kind, f.ID, f.Field)
			}
			errs = append(errs, httpapi.FieldError{Field: field, Reason: f.Reason})
		}
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_entity", "the "+res.short()+" is not valid; errors names each problem", errs...)
	case errors.As(err, &re):
		errs := make([]httpapi.FieldError, 0, len(re.By))
		for _, ref := range re.By {
			errs = append(errs, httpapi.FieldError{Field: refField(ref.Kind, ref.ID, ref.Field), Reason: "references this " + re.Kind.Label()})
		}
		httpapi.WriteProblem(w, http.StatusConflict, "still_referenced",
			fmt.Sprintf("%s %q is still referenced by %d entities; errors lists the first of them", re.Kind.Label(), re.ID, re.Total), errs...)
	case errors.As(err, &ie):
		instead := "cancel it instead: POST /v1/" + pathOf(ie.Kind) + "/" + ie.ID + "/cancel with its last day as end_date"
		if ie.Kind == catalogstore.KindBasicContract {
			instead = "end it instead: set its end_date with PUT /v1/basic-contracts/" + ie.ID +
				" (after cancelling its service contracts with POST /v1/service-contracts/{id}/cancel)"
		}
		httpapi.WriteProblem(w, http.StatusConflict, "contract_in_effect",
			ie.Error()+", which a delete would leave behind; "+instead,
			httpapi.FieldError{Field: "start_date", Reason: fmt.Sprintf("took effect on %s (%s); %s", ie.Start, ie.Zone, instead)})
	case errors.As(err, &le):
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "limit_exceeded", le.Error(),
			httpapi.FieldError{Field: "limits." + le.Limit, Reason: fmt.Sprintf("at most %d per tenant (kakin tenants set-limits)", le.Max)})
	case errors.As(err, &de):
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the request body is invalid; errors names every problem", decodeErrors(de)...)
	case errors.As(err, &vv) && vv.Field == "":
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", vv.Reason, httpapi.FieldError{Reason: vv.Reason})
	case errors.As(err, &vv):
		httpapi.WriteProblem(w, http.StatusUnprocessableEntity, "invalid_entity", vv.Error(), httpapi.FieldError{Field: vv.Field, Reason: vv.Reason})
	case errors.Is(err, catalogstore.ErrBusy):
		httpapi.RetryAfter(w, time.Second)
		httpapi.WriteProblem(w, http.StatusServiceUnavailable, "busy", "another change of this tenant's catalogue is in progress; retry")
	default:
		a.log.ErrorContext(r.Context(), "catalog store failed", "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "err", err)
		httpapi.RetryAfter(w, time.Second)
		httpapi.WriteProblem(w, http.StatusServiceUnavailable, "store_unavailable",
			"the request could not be completed right now; read the entity to see whether the change was made, then retry (request id "+httpapi.RequestID(r.Context())+")")
	}
}

// pathOf is the URL segment of a kind's routes: "service-contracts".
func pathOf(k catalogstore.Kind) string {
	for _, r := range resources {
		if r.kind == k {
			return r.path
		}
	}
	return k.String() + "s"
}

// refField names a field of another entity: plans[cloud-standard].versions[0].
func refField(k catalogstore.Kind, id, field string) string {
	s := k.String() + "s[" + id + "]"
	if field != "" {
		s += "." + field
	}
	return s
}
