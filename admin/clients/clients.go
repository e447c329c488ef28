// Package clients serves a tenant's OAuth2 API clients over the admin API:
// list, count, create, get and revoke (the records live in internal/auth).
package clients

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/page"
	"github.com/kakin-dev/kakin/tenants"
)

// Handlers serves a tenant's API clients: list, count, create, get, revoke.
type Handlers struct {
	store *auth.Store
	pages *page.Codec
}

// New returns the client administration endpoints.
func New(store *auth.Store, pages *page.Codec) *Handlers {
	return &Handlers{store: store, pages: pages}
}

// ClientView is a client as the API shows it.
type ClientView struct {
	ID        string         `json:"client_id"`
	Name      string         `json:"name"`
	Scopes    []auth.Scope   `json:"scopes"`
	Limits    tenants.Limits `json:"limits"`
	Revoked   bool           `json:"revoked"`
	CreatedAt time.Time      `json:"created_at"`
	RevokedAt *time.Time     `json:"revoked_at,omitempty"`
	Secret    string         `json:"client_secret,omitempty"`
}

func view(c auth.Client) ClientView {
	v := ClientView{ID: c.ID, Name: c.Name, Scopes: c.Scopes, Limits: c.Limits, Revoked: c.Revoked, CreatedAt: c.CreatedAt.UTC()}
	if v.Scopes == nil {
		v.Scopes = []auth.Scope{}
	}
	if c.Revoked && !c.RevokedAt.IsZero() {
		at := c.RevokedAt.UTC()
		v.RevokedAt = &at
	}
	return v
}

// QueryParams lists the query parameters each client route understands, by
// route; any other is refused (httpapi.UnknownQuery).
var QueryParams = map[string][]string{
	"GET /v1/clients":                    page.Params(),
	"GET /v1/clients/count":              nil,
	"GET /v1/clients/{clientId}":         nil,
	"POST /v1/clients":                   nil,
	"POST /v1/clients/{clientId}/revoke": nil,
}

// ClientPage is the body of GET /v1/clients before API version 2027-01-01
// (httpapi.WriteList).
type ClientPage struct {
	Clients  []ClientView `json:"clients"`
	NextPage string       `json:"nextPage,omitempty"`
}

// List serves GET /v1/clients.
func (c *Handlers) List(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, page.Params()...)
	req, perrs := c.pages.Parse(q, page.Scope(ten, "clients"))
	if errs = append(errs, perrs...); len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	after := ""
	if len(req.After) == 1 {
		after = req.After[0]
	}
	list, err := c.store.ListClients(r.Context(), ten, after, req.Size+1)
	if err != nil {
		storeFailed(w, r, err)
		return
	}
	more := len(list) > req.Size
	if more {
		list = list[:req.Size]
	}
	views := make([]ClientView, 0, len(list))
	for _, cl := range list {
		views = append(views, view(cl))
	}
	var next string
	if more {
		next = c.pages.Next(req, true, list[len(list)-1].ID)
	}
	httpapi.WriteList(w, r, views, next, ClientPage{Clients: views, NextPage: next})
}

// Count serves GET /v1/clients/count.
func (c *Handlers) Count(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	if !httpapi.KnownQuery(w, r) {
		return
	}
	n, err := c.store.CountClients(r.Context(), ten)
	if err != nil {
		storeFailed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]int{"count": n})
}

type createRequest struct {
	Name   string          `json:"name"`
	Scopes []auth.Scope    `json:"scopes"`
	Limits *tenants.Limits `json:"limits"`
}

// Create serves POST /v1/clients. The secret is in this answer only.
func (c *Handlers) Create(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	if !httpapi.KnownQuery(w, r) {
		return
	}
	var req createRequest
	if !httpapi.DecodeStrict(w, r, &req, false) {
		return
	}
	var errs []httpapi.FieldError
	if n := len([]rune(strings.TrimSpace(req.Name))); n == 0 || n > 100 {
		errs = append(errs, httpapi.FieldError{Field: "name", Reason: "required, 1-100 characters"})
	}
	if len(req.Scopes) == 0 {
		errs = append(errs, httpapi.FieldError{Field: "scopes", Reason: "at least one scope"})
	}
	for i, s := range req.Scopes {
		if !auth.ValidScope(string(s)) {
			errs = append(errs, httpapi.FieldError{Field: "scopes[" + strconv.Itoa(i) + "]", Reason: "unknown scope " + string(s)})
		}
	}
	var limits tenants.Limits
	if req.Limits != nil {
		limits = *req.Limits
		for _, l := range []struct {
			name string
			v    int
		}{{"ingest_events_per_second", limits.IngestEventsPerSecond}, {"ingest_requests_per_second", limits.IngestRequestsPerSecond}, {"admin_requests_per_minute", limits.AdminRequestsPerMinute}} {
			if l.v < 0 || l.v > 1<<32-1 {
				errs = append(errs, httpapi.FieldError{Field: "limits." + l.name, Reason: "must be from 0 to 4294967295"})
			}
		}
	}
	if len(errs) > 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", "the client could not be created", errs...)
		return
	}
	actor := "api"
	if p, ok := auth.FromContext(r.Context()); ok {
		actor = "client:" + p.ClientID
	}
	id, secret, err := c.store.CreateClient(r.Context(), ten, strings.TrimSpace(req.Name), dedupeScopes(req.Scopes), limits, actor)
	if err != nil {
		if errors.Is(err, auth.ErrInvalid) {
			httpapi.WriteProblem(w, http.StatusBadRequest, "invalid_body", err.Error())
			return
		}
		storeFailed(w, r, err)
		return
	}
	cl, err := c.store.GetClient(r.Context(), ten, id)
	if err != nil {
		storeFailed(w, r, err)
		return
	}
	v := view(cl)
	v.Secret = secret
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusCreated, v)
}

// Get serves GET /v1/clients/{clientId}.
func (c *Handlers) Get(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	if !httpapi.KnownQuery(w, r) {
		return
	}
	cl, err := c.store.GetClient(r.Context(), ten, r.PathValue("clientId"))
	if err != nil {
		storeFailed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, view(cl))
}

// Revoke serves POST /v1/clients/{clientId}/revoke.
func (c *Handlers) Revoke(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	if !httpapi.KnownQuery(w, r) {
		return
	}
	actor := "api"
	if p, ok := auth.FromContext(r.Context()); ok {
		actor = "client:" + p.ClientID
	}
	cl, err := c.store.RevokeClient(r.Context(), ten, r.PathValue("clientId"), actor)
	if err != nil {
		storeFailed(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, view(cl))
}

func dedupeScopes(in []auth.Scope) []auth.Scope {
	var out []auth.Scope
	seen := map[auth.Scope]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// storeFailed maps store errors: not found is 404 (also for another tenant's
// ids: they do not exist for this caller), everything else 503.
func storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrNotFound) {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such client")
		return
	}
	slog.ErrorContext(r.Context(), "admin store failed", "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "err", err)
	httpapi.RetryAfter(w, time.Second)
	httpapi.WriteProblem(w, http.StatusServiceUnavailable, "store_unavailable",
		"the request could not be completed right now; retry (request id "+httpapi.RequestID(r.Context())+")")
}

// requestTenant returns the tenant of the authenticated caller, or answers
// 401 when the request has none: a handler never runs without its tenant
// (the store would refuse an empty one anyway).
