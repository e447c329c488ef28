// Package page implements keyset pagination for every list and search of the
// API: a page size with a default and a maximum, and an opaque, tamper-proof
// nextPage cursor that names the last row returned (not an offset), so paging
// stays correct while rows are being added.
package page

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kakin-dev/kakin/internal/httpapi"
)

// DefaultSize is the page size when the request names none (the seed API's default).
const DefaultSize = 10

// Codec signs and checks cursors.
type Codec struct {
	key     []byte
	maxSize int
}

// NewCodec returns a codec whose cursors are authenticated with secret and
// whose page size is capped at maxSize.
func NewCodec(secret []byte, maxSize int) *Codec {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("kakin pagination cursor v1"))
	if maxSize <= 0 {
		maxSize = 1000
	}
	return &Codec{key: mac.Sum(nil), maxSize: maxSize}
}

// MaxSize is the largest page size a request may ask for.
func (c *Codec) MaxSize() int { return c.maxSize }

// cursor is what a nextPage token carries.
type cursor struct {
	Scope  string   `json:"s"` // tenant + route + filters: a cursor is only valid for the query it came from
	After  []string `json:"a"` // sorting-key values of the last row returned
	Size   int      `json:"n"`
	Format int      `json:"v"`
}

// Request is a parsed page request.
type Request struct {
	Size  int
	After []string // nil on the first page
	scope string
}

// ErrBadCursor means a nextPage token was altered, truncated, or used with
// another query than the one it was issued for.
var ErrBadCursor = errors.New("nextPage is not a cursor issued for this query")

// Params returns the query parameters of a paged route: its filters, then
// pageSize and nextPage (see httpapi.UnknownQuery).
func Params(filters ...string) []string {
	return append(slices.Clip(filters), "pageSize", "nextPage")
}

// Parse reads pageSize and nextPage from the query. scope must identify the
// tenant, the route and every filter, so that a cursor cannot be replayed
// against other data.
func (c *Codec) Parse(q url.Values, scope string) (Request, []httpapi.FieldError) {
	req := Request{Size: DefaultSize, scope: scope}
	var errs []httpapi.FieldError
	if s := q.Get("pageSize"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > c.maxSize {
			errs = append(errs, httpapi.FieldError{Field: "pageSize", Reason: fmt.Sprintf("must be a whole number from 1 to %d", c.maxSize)})
		} else {
			req.Size = n
		}
	}
	if tok := q.Get("nextPage"); tok != "" {
		cur, err := c.decode(tok)
		if err != nil || cur.Scope != scope {
			errs = append(errs, httpapi.FieldError{Field: "nextPage", Reason: ErrBadCursor.Error()})
		} else {
			req.After = cur.After
			if q.Get("pageSize") == "" {
				req.Size = cur.Size
			}
		}
	}
	return req, errs
}

// Next returns the nextPage token following a page whose last row has the
// sorting key last, or "" when the page was not full (it was the last page).
// Callers fetch Size+1 rows and pass hasMore accordingly, so that a full last
// page does not get a nextPage that leads to an empty page.
func (c *Codec) Next(req Request, hasMore bool, last ...string) string {
	if !hasMore {
		return ""
	}
	b, _ := json.Marshal(cursor{Scope: req.scope, After: last, Size: req.Size, Format: 1})
	return c.sign(b)
}

func (c *Codec) sign(payload []byte) string {
	mac := hmac.New(sha256.New, c.key)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func (c *Codec) decode(tok string) (cursor, error) {
	p, m, ok := strings.Cut(tok, ".")
	if !ok {
		return cursor{}, ErrBadCursor
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sum, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil {
		return cursor{}, ErrBadCursor
	}
	mac := hmac.New(sha256.New, c.key)
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)[:16]) {
		return cursor{}, ErrBadCursor
	}
	var cur cursor
	if err := json.Unmarshal(payload, &cur); err != nil || cur.Format != 1 {
		return cursor{}, ErrBadCursor
	}
	return cur, nil
}

// Scope builds a cursor scope from the tenant, the route and the filters in a
// fixed order.
func Scope(tenant, route string, filters ...string) string {
	h := sha256.New()
	for _, f := range append([]string{tenant, route}, filters...) {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}
