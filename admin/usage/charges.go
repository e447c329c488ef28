package usage

import (
	"context"
	"net/http"
	"regexp"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/usagedb"
)

// Charges serves a customer's charges for one billing period.
type Charges struct {
	charges *usagedb.Charges
	closed  ClosedPeriods
}

// ClosedPeriods gives a tenant's closed billing periods (corrections.Periods).
type ClosedPeriods interface {
	Closed(ctx context.Context, tenant string) (map[string]bool, error)
}

// WithPeriods marks the answers for closed periods (period_closed): the
// stream's figures of a closed period can still grow with late usage, but
// its receivables are final and what changed is billed as adjustment lines
// in the next open period.
func (c *Charges) WithPeriods(p ClosedPeriods) *Charges {
	c.closed = p
	return c
}

// NewCharges returns the charges route over charges.
func NewCharges(charges *usagedb.Charges) *Charges { return &Charges{charges: charges} }

var periodPattern = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])$`)

// ServeHTTP serves GET /v1/charges?customer=C&period=YYYY-MM[&contract=S]:
// with contract, only the lines of that service contract of the customer
// (a contract of another customer has none there).
func (c *Charges) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	customer, period, contract := q.Get("customer"), q.Get("period"), q.Get("contract")
	errs := httpapi.UnknownQuery(q, chargesParams...)
	if customer == "" || len(customer) > 128 {
		errs = append(errs, httpapi.FieldError{Field: "customer", Reason: "required, at most 128 characters"})
	}
	if q.Has("contract") && (contract == "" || len(contract) > 128) {
		errs = append(errs, httpapi.FieldError{Field: "contract", Reason: "a service contract id of the customer, 1-128 characters"})
	}
	if !periodPattern.MatchString(period) {
		errs = append(errs, httpapi.FieldError{Field: "period", Reason: "required, as YYYY-MM"})
	}
	if len(errs) > 0 {
		httpapi.InvalidQuery(w, errs...)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	resp, err := c.charges.QueryContract(ctx, ten, customer, period, contract)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	if c.closed != nil {
		closed, err := c.closed.Closed(ctx, ten)
		if err != nil {
			queryFailed(w, r, err)
			return
		}
		resp.PeriodClosed = closed[period]
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}
