package catalog

import (
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/schemas"
)

// Customer is a customer (顧客): the unit that is billed. Personal fields are
// in Personal, which the store keeps encrypted; everything else is plain.
type Customer struct {
	ID         string            `json:"id"`
	Status     string            `json:"status,omitempty"` // active (default) or suspended
	Attributes map[string]string `json:"attributes,omitempty"`
	Personal   Personal          `json:"personal"`
}

// Personal holds a customer's personally identifying fields. They are stored
// encrypted with the tenant's data key; exact-match search on them goes
// through a keyed blind index.
type Personal struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Email   string `json:"email,omitempty"`
}

// Group is a group (グループ) of customers with the same attributes.
type Group struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members,omitempty"` // customer ids
}

// BasicContract is a basic contract (基本契約): the customer's billing terms.
type BasicContract struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	DateRange
	Currency string `json:"currency"`
	// ClosingDay is the day of the month a billing period ends on (1-28), or
	// 0 for the last day of the month.
	ClosingDay int        `json:"closing_day"`
	TimeZone   string     `json:"time_zone"`
	Rounding   money.Mode `json:"rounding"` // half_up, down or up
	// BillingPeriod is the length of the billing periods: monthly (the
	// default: closing day), weekly (weeks starting on WeekStart) or daily
	// (each civil day in TimeZone). Metered charges run per billing period;
	// a fixed fee recurs on its own cycle (its recurrence) and is charged
	// in the billing period holding its bill day.
	BillingPeriod BillingPeriod `json:"billing_period,omitempty"`
	// WeekStart is the first day of a week (monday … sunday; default
	// monday): of weekly billing periods and of weekly fixed fees' weeks.
	WeekStart string `json:"week_start,omitempty"`
}

// BillingPeriod is the length of a basic contract's billing periods.
type BillingPeriod string

// Billing periods.
const (
	PeriodMonthly BillingPeriod = "monthly"
	PeriodWeekly  BillingPeriod = "weekly"
	PeriodDaily   BillingPeriod = "daily"
)

// Weekday parses a week_start ("" is monday).
func Weekday(s string) (time.Weekday, bool) {
	if s == "" {
		return time.Monday, true
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		if s == strings.ToLower(d.String()) {
			return d, true
		}
	}
	return 0, false
}

// ServiceContract is a service contract (サービス契約) together with its
// price contracts (料金契約): the service, its term and the plans that apply
// in which periods. A child contract names its parent contract; an option
// is a child whose service is of kind option.
type ServiceContract struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Basic    string `json:"basic_contract"`
	Service  string `json:"service"`
	Parent   string `json:"parent,omitempty"` // parent service contract id
	DateRange
	// Quantity multiplies fixed fees (e.g. number of accounts); 0 means 1.
	Quantity   int               `json:"quantity,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Plans      []PricePlanTerm   `json:"plans"`
	// Cancelled is set by a cancellation (解約): EndDate is then the last day.
	Cancelled bool `json:"cancelled,omitempty"`
	// Label is the customer's own name for the contract (ラベル).
	Label string `json:"label,omitempty"`
	// AssociatedServices are the other services the contract is linked to
	// (連携サービス), which need not be services of this catalogue.
	AssociatedServices []AssociatedService `json:"associated_services,omitempty"`
	// Accounts are the contracted accounts of a product contract (契約
	// アカウント): a count and a range, overall and per platform.
	Accounts *ContractAccounts `json:"accounts,omitempty"`
}

// AssociatedService is a service a contract is linked to (連携サービス):
// its code, name and the customer's label for the link.
type AssociatedService struct {
	Service string `json:"service"` // the linked service's code (ServiceCode)
	Name    string `json:"name"`    // its name (ServiceName)
	Label   string `json:"label,omitempty"`
}

// ContractAccounts are a contract's contracted accounts: how many, and the
// range (band) of the count that prices them, overall and per platform.
type ContractAccounts struct {
	Count     *int64             `json:"count,omitempty"`
	Range     *AccountRange      `json:"range,omitempty"`
	Platforms []PlatformAccounts `json:"platforms,omitempty"`
}

// AccountRange is a band of account counts, From to To inclusive ("101~500");
// no To is open-ended.
type AccountRange struct {
	From int64  `json:"from"`
	To   *int64 `json:"to,omitempty"`
}

// PlatformAccounts are the accounts of one platform or edition (windows,
// mac, basic, lite_a, lite_b, sbc, session, …).
type PlatformAccounts struct {
	Platform string        `json:"platform"`
	Count    *int64        `json:"count,omitempty"`
	Range    *AccountRange `json:"range,omitempty"`
}

// Bounds of the contract listing fields.
const (
	maxAssociated = 100
	maxPlatforms  = 32
	maxAccounts   = 1_000_000_000
)

// PricePlanTerm is one price contract: a plan applied for a date range.
type PricePlanTerm struct {
	Plan string `json:"plan"`
	DateRange
}

// DiscountContract is a discount contract (割引契約).
type DiscountContract struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	// Service, when set, is the service whose contracts the discount
	// applies to: it discounts only charges (metered and fixed) of the
	// customer's service contracts of this service, never another
	// service's; a discount contract for a service the customer has no
	// contract for discounts nothing. Empty (absent) makes the discount
	// customer-wide: it covers the charges of every service contract of the
	// customer, whatever its service (no dummy service is needed).
	Service       string `json:"service,omitempty"`
	DiscountTable string `json:"discount_table"`
	DateRange
	// Scope narrows the discount, within Service (or, without one, within
	// all of the customer's contracts), to one service contract, one plan or
	// one fee; an empty Scope (or level customer) discounts all of the
	// customer's charges of Service (or of every service without one).
	Scope DiscountScope `json:"scope"`
	// Order sets the order in which a customer's discounts apply (ascending,
	// then by id); each applies to what the earlier ones left.
	Order     int  `json:"order"`
	Cancelled bool `json:"cancelled,omitempty"`
}

// DiscountScope selects what a discount contract discounts.
type DiscountScope struct {
	Level  string `json:"level"`            // customer, contract, plan or fee
	Target string `json:"target,omitempty"` // the contract id, plan code or fee code
}

// Validate checks the customer on its own.
func (c *Customer) Validate() error {
	var errs Errors
	if !schemas.ValidCode(c.ID) {
		errs.Add("id", "must be 1-64 characters of letters, digits and _-.:")
	}
	switch c.Status {
	case "", "active", "suspended":
	default:
		errs.Add("status", "must be active or suspended")
	}
	checkAttrs("attributes", c.Attributes, &errs)
	if c.Personal.Email != "" {
		if a, err := mail.ParseAddress(c.Personal.Email); err != nil || a.Address != c.Personal.Email {
			errs.Add("personal.email", "is not an e-mail address")
		}
	}
	for field, v := range map[string]string{"name": c.Personal.Name, "address": c.Personal.Address, "phone": c.Personal.Phone} {
		if len(v) > 1024 {
			errs.Add("personal."+field, "must be at most 1024 bytes")
		}
	}
	return errs.Err()
}

// Validate checks the group on its own.
func (g *Group) Validate() error {
	var errs Errors
	if !schemas.ValidCode(g.ID) {
		errs.Add("id", "must be 1-64 characters of letters, digits and _-.:")
	}
	if g.Name == "" || len(g.Name) > 256 {
		errs.Add("name", "must be 1-256 characters")
	}
	seen := map[string]bool{}
	for i, m := range g.Members {
		if seen[m] {
			errs.Add(fmt.Sprintf("members[%d]", i), "listed twice")
		}
		seen[m] = true
	}
	return errs.Err()
}

// Validate checks the basic contract on its own.
func (b *BasicContract) Validate() error {
	var errs Errors
	checkContractHeader(b.ID, b.Customer, &errs)
	b.DateRange.check("", &errs)
	if _, ok := currencyPlaces(b.Currency); !ok {
		errs.Add("currency", fmt.Sprintf("unknown currency %q", b.Currency))
	}
	if b.ClosingDay < 0 || b.ClosingDay > 28 {
		errs.Add("closing_day", "must be 1-28, or 0 for the last day of the month")
	}
	switch b.BillingPeriod {
	case "", PeriodMonthly, PeriodWeekly, PeriodDaily:
	default:
		errs.Add("billing_period", "must be monthly, weekly or daily")
	}
	if _, ok := Weekday(b.WeekStart); !ok {
		errs.Add("week_start", "must be a weekday in lower case: monday, tuesday, … sunday")
	}
	if _, err := time.LoadLocation(b.TimeZone); err != nil || b.TimeZone == "" {
		errs.Add("time_zone", fmt.Sprintf("unknown time zone %q", b.TimeZone))
	}
	if _, err := money.ParseMode(string(b.Rounding)); err != nil {
		errs.Add("rounding", "must be half_up, down or up")
	}
	return errs.Err()
}

// Validate checks the service contract on its own.
func (s *ServiceContract) Validate() error {
	var errs Errors
	checkContractHeader(s.ID, s.Customer, &errs)
	if !schemas.ValidCode(s.Basic) {
		errs.Add("basic_contract", "is required")
	}
	if !schemas.ValidCode(s.Service) {
		errs.Add("service", "is required")
	}
	if s.Parent == s.ID && s.ID != "" {
		errs.Add("parent", "a contract cannot be its own parent")
	}
	s.DateRange.check("", &errs)
	if s.Quantity < 0 {
		errs.Add("quantity", "must not be negative")
	}
	if s.Quantity > MaxContractQuantity {
		errs.Add("quantity", "must be at most 1000000000 (10^9), so that fixed fees times it fit the stored amounts")
	}
	checkAttrs("attributes", s.Attributes, &errs)
	if len(s.Label) > 256 {
		errs.Add("label", "must be at most 256 bytes")
	}
	if len(s.AssociatedServices) > maxAssociated {
		errs.Add("associated_services", fmt.Sprintf("at most %d", maxAssociated))
	}
	linked := map[string]bool{}
	for i, a := range s.AssociatedServices {
		f := fmt.Sprintf("associated_services[%d]", i)
		if !schemas.ValidCode(a.Service) {
			errs.Add(f+".service", "must be 1-64 characters of letters, digits and _-.:")
		} else if linked[a.Service] {
			errs.Add(f+".service", "listed twice")
		}
		linked[a.Service] = true
		if a.Name == "" || len(a.Name) > 256 {
			errs.Add(f+".name", "must be 1-256 bytes")
		}
		if len(a.Label) > 256 {
			errs.Add(f+".label", "must be at most 256 bytes")
		}
	}
	if a := s.Accounts; a != nil {
		checkAccounts("accounts", a.Count, a.Range, &errs)
		if len(a.Platforms) > maxPlatforms {
			errs.Add("accounts.platforms", fmt.Sprintf("at most %d", maxPlatforms))
		}
		seen := map[string]bool{}
		for i, p := range a.Platforms {
			f := fmt.Sprintf("accounts.platforms[%d]", i)
			if !schemas.ValidCode(p.Platform) {
				errs.Add(f+".platform", "must be 1-64 characters of letters, digits and _-.:")
			} else if seen[p.Platform] {
				errs.Add(f+".platform", "listed twice")
			}
			seen[p.Platform] = true
			if p.Count == nil && p.Range == nil {
				errs.Add(f, "give count, range or both")
			}
			checkAccounts(f, p.Count, p.Range, &errs)
		}
	}
	if len(s.Plans) == 0 {
		errs.Add("plans", "at least one price plan is required")
	}
	for i, p := range s.Plans {
		f := fmt.Sprintf("plans[%d]", i)
		if !schemas.ValidCode(p.Plan) {
			errs.Add(f+".plan", "is required")
		}
		p.DateRange.check(f, &errs)
		if p.Start.Before(s.Start) || (s.End != nil && (p.End == nil || p.End.After(*s.End))) {
			errs.Add(f, "must lie within the contract's start_date and end_date")
		}
		for j := 0; j < i; j++ {
			if s.Plans[j].Overlaps(p.DateRange) {
				errs.Add(f, fmt.Sprintf("overlaps plans[%d]: one plan at a time", j))
			}
		}
	}
	return errs.Err()
}

// Validate checks the discount contract on its own.
func (d *DiscountContract) Validate() error {
	var errs Errors
	checkContractHeader(d.ID, d.Customer, &errs)
	if d.Service != "" && !schemas.ValidCode(d.Service) {
		errs.Add("service", "must be a service code (or absent: a customer-wide discount of every service)")
	}
	if !schemas.ValidCode(d.DiscountTable) {
		errs.Add("discount_table", "is required")
	}
	d.DateRange.check("", &errs)
	switch d.Scope.Level {
	case "", "customer":
		if d.Scope.Target != "" {
			errs.Add("scope.target", "a customer-wide discount has no target")
		}
	case "contract", "plan", "fee":
		if !schemas.ValidCode(d.Scope.Target) {
			errs.Add("scope.target", "is required for level "+d.Scope.Level)
		}
	default:
		errs.Add("scope.level", "must be customer, contract, plan or fee")
	}
	return errs.Err()
}

func checkAccounts(field string, count *int64, r *AccountRange, errs *Errors) {
	if count != nil && (*count < 0 || *count > maxAccounts) {
		errs.Add(field+".count", "must be 0-1000000000")
	}
	if r != nil {
		if r.From < 0 || r.From > maxAccounts {
			errs.Add(field+".range.from", "must be 0-1000000000")
		}
		if r.To != nil && (*r.To < r.From || *r.To > maxAccounts) {
			errs.Add(field+".range.to", "must be at least from and at most 1000000000")
		}
	}
}

func checkContractHeader(id, customer string, errs *Errors) {
	if !schemas.ValidCode(id) {
		errs.Add("id", "must be 1-64 characters of letters, digits and _-.:")
	}
	if !schemas.ValidCode(customer) {
		errs.Add("customer", "is required")
	}
}

func checkAttrs(field string, m map[string]string, errs *Errors) {
	for k, v := range m {
		if k == "" || len(k) > 64 {
			errs.Add(field, fmt.Sprintf("key %q must be 1-64 characters", k))
		}
		if len(v) > 256 {
			errs.Add(field+"."+k, "must be at most 256 characters")
		}
	}
}

func currencyPlaces(code string) (int32, bool) {
	c, err := money.LookupCurrency(code)
	return c.Places, err == nil && code == c.Code
}

// canonicalAttrs renders attributes sorted by key, for comparisons and keys.
func canonicalAttrs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%q=%q;", k, m[k])
	}
	return b.String()
}
