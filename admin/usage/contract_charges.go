package usage

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/usagedb"
	"github.com/shopspring/decimal"
)

// Catalogue is what the pay-per-use route reads of the catalogue: a
// tenant's service contract, its basic contract and fee masters
// (*catalogstore.Replica).
type Catalogue interface {
	Get(tenant string, k catalogstore.Kind, id string) (catalogstore.Entity, bool)
}

// ContractCharges serves GET /v1/service-contracts/{id}/charges: one
// service contract's pay-per-use charges (従量課金情報) per billing month.
type ContractCharges struct {
	items *usagedb.ContractCharges
	cat   Catalogue
	now   func() time.Time
}

// NewContractCharges returns the route over the rated lines in items and
// the contracts in cat; now is the business clock (nil: clock.Now).
func NewContractCharges(items *usagedb.ContractCharges, cat Catalogue, now func() time.Time) *ContractCharges {
	if now == nil {
		now = clock.Now
	}
	return &ContractCharges{items: items, cat: cat, now: now}
}

// Bill item kinds (料金科目) of a contract's charge item.
const (
	BillItemBase       = "base"       // 基本額 (code 0): a fixed fee
	BillItemAdditional = "additional" // 加算額 (code 1): metered usage
)

// Month results: a month with lines, or none (a normal answer, not 404).
const (
	MonthOK     = "ok"      // 000000 正常
	MonthNoData = "no_data" // 100000 該当データ無し
)

// ContractChargeItem is one charge item of the contract in a month.
type ContractChargeItem struct {
	BillItem     string `json:"bill_item"`      // base (基本額) or additional (加算額)
	BillItemCode string `json:"bill_item_code"` // 0 (base) or 1 (additional), as the pay-per-use spec codes them
	Item         string `json:"item"`           // the charge item as rated: contract/fee[split values]
	Fee          string `json:"fee"`            // the fee (料金) code
	// Element is the calculation element that was used; for a fixed fee,
	// the fee code (the rater writes fixed fees with the fee as element).
	Element string `json:"element"`
	// Attributes are the record attributes the item was priced per (the
	// fee's split_by attributes and their values), e.g. bandwidth.
	Attributes map[string]string `json:"attributes"`
	Quantity   string            `json:"quantity"`
	Amount     string            `json:"amount"`
	Currency   string            `json:"currency"`
	Lines      uint64            `json:"lines"` // rated lines summed (corrections included)
	// EffectiveDate and TerminationDate are the first and last day of the
	// month (billing period) on which the contract ran (利用開始日 /
	// 利用終了日): the period, narrowed by a start or end inside it.
	EffectiveDate   string `json:"effective_date,omitempty"`
	TerminationDate string `json:"termination_date,omitempty"`
	// FirstUsageAt and LastUsageAt are the earliest and latest usage time
	// of a metered item's lines.
	FirstUsageAt *time.Time `json:"first_usage_at,omitempty"`
	LastUsageAt  *time.Time `json:"last_usage_at,omitempty"`
}

// ContractChargeMonth is the contract's charges for one billing month.
type ContractChargeMonth struct {
	Month       string               `json:"month"`  // YYYYMM: the month the billing period ends in
	Period      string               `json:"period"` // the same period as YYYY-MM (rated_usage.period)
	PeriodStart string               `json:"period_start"`
	PeriodEnd   string               `json:"period_end"`
	Result      string               `json:"result"` // ok, or no_data when the contract has no lines in the month
	Items       []ContractChargeItem `json:"items"`
	Totals      []usagedb.Total      `json:"totals"`
	Currency    string               `json:"currency,omitempty"` // set with Total when one currency
	Total       string               `json:"total,omitempty"`
}

// ContractChargesResponse is the body of GET /v1/service-contracts/{id}/charges.
type ContractChargesResponse struct {
	Contract string                `json:"contract"`
	Customer string                `json:"customer"`
	Service  string                `json:"service"`
	Months   []ContractChargeMonth `json:"months"`
}

var monthPattern = regexp.MustCompile(`^\d{4}(0[1-9]|1[0-2])$`)

// ContractChargesParams are the route's query parameters.
var ContractChargesParams = []string{"month"}

// ServeHTTP answers the months asked for: ?month=YYYYMM, or without it the
// current and the previous billing month (business time, the basic
// contract's time zone and closing day), previous first.
func (c *ContractCharges) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ten, ok := httpapi.RequestTenant(w, r)
	if !ok {
		return
	}
	if !httpapi.KnownQuery(w, r, ContractChargesParams...) {
		return
	}
	q := r.URL.Query()
	var asked *month
	if q.Has("month") {
		s := q.Get("month")
		if !monthPattern.MatchString(s) {
			httpapi.InvalidQuery(w, httpapi.FieldError{Field: "month", Reason: "must be a month as YYYYMM (six digits, e.g. 202603)"})
			return
		}
		t, _ := time.Parse("200601", s)
		asked = &month{t.Year(), t.Month()}
	}
	id := r.PathValue("id")
	e, found := c.cat.Get(ten, catalogstore.KindServiceContract, id)
	sc, isContract := e.Value.(*catalog.ServiceContract)
	if !found || e.Deleted || !isContract {
		httpapi.WriteProblem(w, http.StatusNotFound, "not_found", "no such service contract")
		return
	}
	closing, loc := 0, time.UTC
	if b, ok := c.cat.Get(ten, catalogstore.KindBasicContract, sc.Basic); ok && !b.Deleted {
		if bc, ok := b.Value.(*catalog.BasicContract); ok {
			closing = bc.ClosingDay
			if l, err := time.LoadLocation(bc.TimeZone); err == nil {
				loc = l
			}
		}
	}
	var months []month
	if asked != nil {
		months = []month{*asked}
	} else {
		cur := periodContaining(catalog.DateOf(c.now().In(loc)), closing)
		months = []month{cur.prev(), cur}
	}
	periods := make([]string, len(months))
	for i, m := range months {
		periods[i] = m.period()
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	items, err := c.items.Items(ctx, ten, sc.Customer, sc.ID, periods)
	if err != nil {
		queryFailed(w, r, err)
		return
	}
	resp := ContractChargesResponse{Contract: sc.ID, Customer: sc.Customer, Service: sc.Service, Months: make([]ContractChargeMonth, 0, len(months))}
	for _, m := range months {
		resp.Months = append(resp.Months, c.render(ten, sc, m, closing, items))
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (c *ContractCharges) render(ten string, sc *catalog.ServiceContract, m month, closing int, items []usagedb.ContractItem) ContractChargeMonth {
	start, end := m.bounds(closing)
	out := ContractChargeMonth{Month: m.compact(), Period: m.period(), PeriodStart: start.String(), PeriodEnd: end.String(),
		Result: MonthNoData, Items: []ContractChargeItem{}, Totals: []usagedb.Total{}}
	// The contract's days within the period.
	from, to := start, end
	if sc.Start.After(from) {
		from = sc.Start
	}
	if sc.End != nil && sc.End.Before(to) {
		to = *sc.End
	}
	ran := !from.After(to)
	totals := map[string]decimal.Decimal{}
	var order []string
	for _, it := range items {
		if it.Period != out.Period {
			continue
		}
		fee, split := splitItem(sc.ID, it.Item)
		ci := ContractChargeItem{BillItem: BillItemAdditional, BillItemCode: "1", Item: it.Item, Fee: fee, Element: it.Element,
			Attributes: c.attributes(ten, fee, split, end), Quantity: it.Quantity.String(),
			Amount: formatMoney(it.Currency, it.Amount), Currency: it.Currency, Lines: it.Lines}
		if it.Fixed {
			ci.BillItem, ci.BillItemCode = BillItemBase, "0"
		} else {
			first, last := it.FirstTime, it.LastTime
			ci.FirstUsageAt, ci.LastUsageAt = &first, &last
		}
		if ran {
			ci.EffectiveDate, ci.TerminationDate = from.String(), to.String()
		}
		out.Items = append(out.Items, ci)
		if _, ok := totals[it.Currency]; !ok {
			order = append(order, it.Currency)
		}
		totals[it.Currency] = totals[it.Currency].Add(it.Amount)
	}
	for _, cur := range order {
		out.Totals = append(out.Totals, usagedb.Total{Currency: cur, Amount: formatMoney(cur, totals[cur])})
	}
	if len(out.Items) > 0 {
		out.Result = MonthOK
	}
	if len(out.Totals) == 1 {
		out.Currency, out.Total = out.Totals[0].Currency, out.Totals[0].Amount
	}
	return out
}

// splitItem takes a rated item "contract/fee[v1,v2]" apart into the fee
// and its split values.
func splitItem(contract, item string) (string, []string) {
	rest := strings.TrimPrefix(item, contract+"/")
	i := strings.IndexByte(rest, '[')
	if i < 0 || !strings.HasSuffix(rest, "]") {
		return rest, nil
	}
	return rest[:i], strings.Split(rest[i+1:len(rest)-1], ",")
}

// attributes names the split values by the fee's split_by attributes (the
// fee version in force at the end of the period); values that do not match
// the fee's attributes one to one are given under "split".
func (c *ContractCharges) attributes(ten, fee string, split []string, end catalog.Date) map[string]string {
	out := map[string]string{}
	if len(split) == 0 {
		return out
	}
	var names []string
	if e, ok := c.cat.Get(ten, catalogstore.KindFee, fee); ok && !e.Deleted {
		if f, ok := e.Value.(*catalog.Fee); ok {
			at := end.In(time.UTC)
			if v, found := catalog.VersionAt(f.Versions, func(v *catalog.FeeVersion) catalog.Validity { return v.Validity }, at); found {
				names = v.SplitBy
			} else if len(f.Versions) > 0 {
				names = f.Versions[len(f.Versions)-1].SplitBy
			}
		}
	}
	if len(names) != len(split) {
		out["split"] = strings.Join(split, ",")
		return out
	}
	for i, n := range names {
		out[n] = split[i]
	}
	return out
}

func formatMoney(currency string, d decimal.Decimal) string {
	if c, err := money.LookupCurrency(currency); err == nil {
		return c.Format(d)
	}
	return d.String()
}

// month names a billing period by the month it ends in.
type month struct {
	year int
	mon  time.Month
}

func (m month) prev() month {
	if m.mon == time.January {
		return month{m.year - 1, time.December}
	}
	return month{m.year, m.mon - 1}
}

func (m month) next() month {
	if m.mon == time.December {
		return month{m.year + 1, time.January}
	}
	return month{m.year, m.mon + 1}
}

func (m month) period() string {
	return time.Date(m.year, m.mon, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
}

func (m month) compact() string {
	return time.Date(m.year, m.mon, 1, 0, 0, 0, 0, time.UTC).Format("200601")
}

// periodContaining is the billing period of day under a closing day (0:
// calendar months; d: from day d+1 of the previous month to day d), as the
// rater computes it (rater/pricing).
func periodContaining(day catalog.Date, closing int) month {
	m := month{day.Year, day.Month}
	if closing != 0 && day.Day > closing {
		m = m.next()
	}
	return m
}

// bounds are the first and last day of the period.
func (m month) bounds(closing int) (catalog.Date, catalog.Date) {
	last := time.Date(m.year, m.mon+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if closing == 0 {
		return catalog.Date{Year: m.year, Month: m.mon, Day: 1}, catalog.Date{Year: m.year, Month: m.mon, Day: last}
	}
	p := m.prev()
	start := catalog.Date{Year: p.year, Month: p.mon, Day: closing + 1}
	if closing+1 > time.Date(p.year, p.mon+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		start = catalog.Date{Year: m.year, Month: m.mon, Day: 1}
	}
	return start, catalog.Date{Year: m.year, Month: m.mon, Day: closing}
}
