package auth

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kakin-dev/kakin/tenants"
)

// GrantClientCredentials is the only grant type the token endpoint serves.
const GrantClientCredentials = "client_credentials"

// tokenResponse is the RFC 6749 §5.1 success body.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// oauthError is the RFC 6749 §5.2 error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// TokenHandler serves POST /oauth/token: the OAuth 2.0 client-credentials
// grant (RFC 6749 §4.4). The client authenticates with HTTP Basic or with
// client_id/client_secret form fields (not both); an optional "scope"
// narrows the token to a subset of the client's scopes.
//
// An unknown client, a wrong secret, a revoked client and a client of a
// removed tenant all get the same invalid_client answer after the same
// argon2id work (an unknown id is checked against a dummy hash). Revocation
// is read from the store here, not from the cache, so a revoked client gets
// no new token from the moment RevokeClient returns.
//
// With Options.Attempts set, an attempt over its remote address's or its
// client id's budget is answered 429 temporarily_unavailable (the RFC 6749
// §5.2 body, with Retry-After) before any secret is hashed.
func (a *Authenticator) TokenHandler() http.Handler {
	return http.HandlerFunc(a.serveToken)
}

func (a *Authenticator) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		a.tokenError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	form := r.PostForm // parameters in the URL are ignored (secrets do not belong there)
	for k, v := range form {
		if len(v) > 1 {
			a.tokenError(w, http.StatusBadRequest, "invalid_request", "parameter "+k+" repeated")
			return
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "":
		a.tokenError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	case GrantClientCredentials:
	default:
		a.tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}

	id, secret, ok := a.clientCredentials(w, r, form)
	if !ok {
		return
	}
	if a.attempts != nil {
		// Before the hash: a refused attempt costs one Redis round trip, not
		// an argon2id hash.
		if d := a.attempts.AllowTokenAttempt(r.Context(), RemoteAddress(r), id); !d.Allowed {
			a.m.limited.WithLabelValues(d.By).Inc()
			retry := max(int(math.Ceil(d.RetryAfter.Seconds())), 1)
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			what := "this address"
			if d.By == "client" {
				what = "this client id"
			}
			a.tokenError(w, http.StatusTooManyRequests, "temporarily_unavailable",
				"too many token requests from "+what+"; retry after "+strconv.Itoa(retry)+"s (Retry-After)")
			return
		}
	}
	c, t, status, err := a.authenticateClient(r.Context(), id, secret)
	if err != nil {
		if status == http.StatusUnauthorized {
			a.invalidClient(w)
			return
		}
		a.log.Error("token endpoint: store unavailable", "err", err)
		a.tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "try again shortly")
		return
	}

	granted := c.Scopes
	if s := form.Get("scope"); strings.TrimSpace(s) != "" {
		var ok bool
		if granted, ok = narrowScopes(c.Scopes, s); !ok {
			a.tokenError(w, http.StatusBadRequest, "invalid_scope", "scope must be a space-separated subset of the client's scopes")
			return
		}
	}
	p := Principal{Tenant: c.Tenant, ClientID: c.ID, Scopes: granted, Limits: c.Limits.Or(t.Limits)}
	tok, exp, err := a.tokens.Issue(p)
	if err != nil {
		a.log.Error("token endpoint: sign token", "err", err)
		a.tokenError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	a.m.issued.Inc()
	scopes := make([]string, len(granted))
	for i, s := range granted {
		scopes[i] = string(s)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(tokenResponse{AccessToken: tok, TokenType: "Bearer",
		ExpiresIn: int(exp.Sub(a.tokens.Now()).Seconds()), Scope: strings.Join(scopes, " ")})
}

// clientCredentials extracts the client id and secret from Basic auth or
// the form (RFC 6749 §2.3.1), answering the error itself when !ok.
func (a *Authenticator) clientCredentials(w http.ResponseWriter, r *http.Request, form url.Values) (id, secret string, ok bool) {
	bid, bsecret, basic := r.BasicAuth()
	_, formID := form["client_id"]
	_, formSecret := form["client_secret"]
	if h := r.Header.Get("Authorization"); !basic && len(h) >= 6 && strings.EqualFold(h[:6], "basic ") {
		a.invalidClient(w)
		return "", "", false
	}
	switch {
	case basic && (formID || formSecret):
		a.tokenError(w, http.StatusBadRequest, "invalid_request", "use one client authentication method, not both")
		return "", "", false
	case basic:
		// Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1).
		var err1, err2 error
		id, err1 = url.QueryUnescape(bid)
		secret, err2 = url.QueryUnescape(bsecret)
		if err1 != nil || err2 != nil {
			a.invalidClient(w)
			return "", "", false
		}
	default:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" || secret == "" {
		a.invalidClient(w)
		return "", "", false
	}
	return id, secret, true
}

// authenticateClient checks id and secret. status is 401 when the client
// must be refused, 503 when the store failed.
func (a *Authenticator) authenticateClient(ctx context.Context, id, secret string) (Client, tenants.Tenant, int, error) {
	select {
	case a.hashSem <- struct{}{}:
		defer func() { <-a.hashSem }()
	case <-ctx.Done():
		return Client{}, tenants.Tenant{}, http.StatusServiceUnavailable, ctx.Err()
	}
	hash, known := a.dummy, false
	var c Client
	if len(id) <= 64 {
		var err error
		c, err = a.store.ClientByID(ctx, id)
		switch {
		case err == nil:
			hash, known = c.secretHash, true
		case !errors.Is(err, ErrNotFound):
			return Client{}, tenants.Tenant{}, http.StatusServiceUnavailable, err
		}
	}
	a.m.hashes.Inc()
	match, err := verifySecret(secret, hash)
	if err != nil {
		a.log.Error("token endpoint: stored secret hash unreadable", "client_id", c.ID, "err", err)
	}
	if !known || !match || c.Revoked {
		return Client{}, tenants.Tenant{}, http.StatusUnauthorized, errInvalidClient
	}
	t, err := a.store.tenants.GetTenant(ctx, c.Tenant)
	if errors.Is(err, ErrNotFound) {
		return Client{}, tenants.Tenant{}, http.StatusUnauthorized, errInvalidClient
	}
	if err != nil {
		return Client{}, tenants.Tenant{}, http.StatusServiceUnavailable, err
	}
	return c, t, http.StatusOK, nil
}

var errInvalidClient = errors.New("invalid client")

// narrowScopes returns the scopes of requested (space-separated), if each is
// one the client holds (a client with admin may ask for any scope).
func narrowScopes(have []Scope, requested string) ([]Scope, bool) {
	var out []Scope
	for f := range strings.FieldsSeq(requested) {
		s := Scope(f)
		if !ValidScope(f) || !(slices.Contains(have, s) || slices.Contains(have, ScopeAdmin)) {
			return nil, false
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, len(out) > 0
}

func (a *Authenticator) invalidClient(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="kakin", charset="UTF-8"`)
	a.tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
}

func (a *Authenticator) tokenError(w http.ResponseWriter, status int, code, desc string) {
	a.m.tokenErrors.WithLabelValues(code).Inc()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(oauthError{Error: code, Description: desc})
}
