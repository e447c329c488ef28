package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/ingest/imports"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/money"
	"github.com/kakin-dev/kakin/rater/pricing"
	"github.com/kakin-dev/kakin/schemas"
	"github.com/shopspring/decimal"
)

const rateUsage = `Usage:
  kakin rate --catalog catalogue.yaml --usage usage.ndjson [--period YYYY-MM | --from YYYY-MM --to YYYY-MM] [--lines] [--format table|json] [--tenant T] [--allow-unrated]

Prices usage offline with the rater's pricing engine: the catalogue file (masters
and contracts, YAML or JSON) is decoded and validated, every usage record is read
and validated as POST /v1/usage would (one JSON object per line; a repeated id is
a duplicate and priced once) and priced in file order. Prints each charge (fee,
split and rate table per contract and period) with its records, quantity and
amount, the fixed fees of the periods seen, and totals per customer and period.
Records that cannot be priced are listed with their reason. --period keeps only
that billing period; --from and --to a range of them, and the fixed fees of
every period of the range appear, with or without usage. --lines also lists every record's line per charge with
the charge's running state (records, quantity, total) after it. Nothing is
written anywhere.

Exits non-zero when any record was rejected or could not be priced (after
printing the report), so scripts can rely on the exit status; --allow-unrated
exits 0 anyway.
`

// runRate implements `kakin rate`.
func runRate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("kakin rate", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), rateUsage); fs.PrintDefaults() }
	catalogPath := fs.String("catalog", "", "catalogue file with contracts (YAML or JSON)")
	usagePath := fs.String("usage", "", "usage records, NDJSON (one record per line)")
	periodFlag := fs.String("period", "", "only this billing period: YYYY-MM (monthly, the month it ends in), YYYY-MM-DD/P1W (weekly, by its first day) or YYYY-MM-DD (daily)")
	fromFlag := fs.String("from", "", "first billing period of a range, as --period (with --to): fixed fees appear for every period of the range, with or without usage")
	toFlag := fs.String("to", "", "last billing period of the range, as --period (with --from)")
	format := fs.String("format", "table", "output: table or json")
	tenant := fs.String("tenant", "", "tenant of the records (default: the catalogue's tenant)")
	allowUnrated := fs.Bool("allow-unrated", false, "exit 0 even when records were rejected or could not be priced")
	withLines := fs.Bool("lines", false, "also list each record's line per charge with the charge's running state after it")
	if err := fs.Parse(args); err != nil {
		return ignoreHelp(err)
	}
	if fs.NArg() != 0 || *catalogPath == "" || *usagePath == "" {
		return errors.New("usage: kakin rate --catalog FILE --usage FILE [--period YYYY-MM] [--format table|json]")
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("--format %q: want table or json", *format)
	}
	var only periodRange
	if *periodFlag != "" {
		if *fromFlag != "" || *toFlag != "" {
			return errors.New("--period and --from/--to exclude each other")
		}
		*fromFlag, *toFlag = *periodFlag, *periodFlag
	}
	if (*fromFlag == "") != (*toFlag == "") {
		return errors.New("--from and --to go together")
	}
	if *fromFlag != "" {
		lo, err := pricing.ParsePeriod(*fromFlag)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		hi, err := pricing.ParsePeriod(*toFlag)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		if !lo.SameKind(hi) {
			return fmt.Errorf("--from %s and --to %s are periods of different lengths (monthly YYYY-MM, weekly YYYY-MM-DD/P1W, daily YYYY-MM-DD)", *fromFlag, *toFlag)
		}
		if hi < lo {
			return fmt.Errorf("--to %s is before --from %s", *toFlag, *fromFlag)
		}
		n := 0
		for p := lo; p <= hi; p = p.Next() {
			if n++; n > 120 {
				return errors.New("--from/--to span more than 120 periods")
			}
		}
		only = periodRange{lo, hi}
	}

	cat, err := readCatalogue(*catalogPath)
	if err != nil {
		return err
	}
	engine, err := pricing.Compile(cat)
	if err != nil {
		return fmt.Errorf("catalogue %s: %w", *catalogPath, err)
	}
	ten := *tenant
	if ten == "" {
		ten = cat.Tenant
	}
	if ten == "" {
		ten = "what-if"
	}
	in, err := readUsage(*usagePath, ten)
	if err != nil {
		return err
	}

	batch := engine.RatePeriod(in.events)
	rep := buildRateReport(engine, cat, in, batch, only)
	if *withLines {
		rep.Lines = recordLines(in, batch, only)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.writeTable(stdout)
	}
	if err != nil {
		return err
	}
	if n, m := len(rep.Rejected), len(rep.Unrated); (n > 0 || m > 0) && !*allowUnrated {
		return fmt.Errorf("%w: %d record(s) rejected, %d not priced (--allow-unrated to exit 0)", errRateIncomplete, n, m)
	}
	return nil
}

// recordLines lists each record's line per charge, in file order, with the
// charge's running state and total after it.
func recordLines(in *usageInput, b *pricing.Batch, only periodRange) []lineRow {
	totals := map[pricing.Key]int64{}
	var out []lineRow
	for _, l := range b.Lines {
		totals[l.Key] += l.Line.Amount
		if !only.has(l.Key.Period) {
			continue
		}
		cur := money.Currency{Code: l.Currency, Places: l.Line.Places}
		ev := &in.events[l.Event]
		out = append(out, lineRow{Line: in.lineOf[l.Event], ID: ev.ID, Customer: l.Key.Customer, Period: l.Key.Period.String(),
			Contract: l.Key.Contract, Item: l.Key.Item(), RateTable: l.Key.Rate, Amount: cur.Format(l.Line.Decimal()),
			Discount: cur.Format(l.Line.DiscountDecimal()), Currency: l.Currency, Records: l.Records, Quantity: l.Quantity.String(),
			Total: cur.Format(decimal.New(totals[l.Key], -l.Line.Places))})
	}
	return out
}

// errRateIncomplete: kakin rate printed its report, but some records were
// rejected or could not be priced.
var errRateIncomplete = errors.New("kakin rate: not every record was priced")

// A catalogue that does not decode or validate is refused with every
// mistake on a line of its own, each naming the entity it belongs to and
// the field's path, e.g.
//
//	catalogue.yaml: 1 mistake:
//	  fee "api" fees[0].versions[0].element: unknown element "calls"
func readCatalogue(path string) (*catalog.Catalogue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, catalog.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	explain := func(err error) error {
		doc, jerr := catalog.YAMLToJSON(raw)
		if jerr != nil {
			doc = nil
		}
		return &catalogueError{path: path, text: catalog.Explain(doc, err), err: err}
	}
	cat, err := catalog.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, explain(err)
	}
	if err := cat.Validate(); err != nil {
		return nil, explain(err)
	}
	if len(cat.ServiceContracts) == 0 {
		return nil, fmt.Errorf("%s: no service contracts: what-if rating needs the customers' contracts in the catalogue file", path)
	}
	return cat, nil
}

// catalogueError is a catalogue file's mistakes, explained one per line.
type catalogueError struct {
	path, text string
	err        error
}

func (e *catalogueError) Error() string { return e.path + ": " + e.text }

func (e *catalogueError) Unwrap() error { return e.err }

// usageInput is the records read from a usage file.
type usageInput struct {
	events     []schemas.UsageEvent
	lineOf     []int // file line of each event
	rejected   []rejectedRecord
	duplicates []duplicateRecord
}

type rejectedRecord struct {
	Line   int                  `json:"line"`
	Errors []httpapi.FieldError `json:"errors"`
}

type duplicateRecord struct {
	Line      int    `json:"line"`
	ID        string `json:"id"`
	FirstLine int    `json:"first_line"`
}

// readUsage reads a CSV (by its .csv extension) or NDJSON usage file with
// the import reader, so every record is validated as POST /v1/usage does.
func readUsage(path, tenant string) (*usageInput, error) {
	format := imports.FormatNDJSON
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		format = imports.FormatCSV
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// No time windows: what-if rating prices past usage.
	rd, err := imports.NewReader(f, format, tenant, clock.Now(), ingest.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	in := &usageInput{}
	firstLine := map[string]int{}
	for {
		line, ev, errs, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		n := int(line)
		if len(errs) > 0 {
			in.rejected = append(in.rejected, rejectedRecord{Line: n, Errors: errs})
			continue
		}
		if first, dup := firstLine[ev.ID]; dup {
			in.duplicates = append(in.duplicates, duplicateRecord{Line: n, ID: ev.ID, FirstLine: first})
			continue
		}
		firstLine[ev.ID] = n
		in.events = append(in.events, ev)
		in.lineOf = append(in.lineOf, n)
	}
	return in, nil
}

// rateReport is what `kakin rate` prints.
type rateReport struct {
	// Lines are the per-record lines (--lines): each record's amount under
	// each charge and the charge's running state after it.
	Lines      []lineRow         `json:"lines,omitempty"`
	Charges    []chargeRow       `json:"charges"`
	Fixed      []fixedRow        `json:"fixed"`
	Totals     []totalRow        `json:"totals"`
	Unrated    []unratedRow      `json:"unrated"`
	Rejected   []rejectedRecord  `json:"rejected"`
	Duplicates []duplicateRecord `json:"duplicates"`
}

type lineRow struct {
	Line      int    `json:"line"` // line of the usage file
	ID        string `json:"id"`
	Customer  string `json:"customer"`
	Period    string `json:"period"`
	Contract  string `json:"contract"`
	Item      string `json:"item"`
	RateTable string `json:"rate_table"`
	Amount    string `json:"amount"`
	Discount  string `json:"discount"`
	Currency  string `json:"currency"`
	// The charge's running state after the record.
	Records  uint64 `json:"records_after"`
	Quantity string `json:"quantity_after"`
	Total    string `json:"total_after"`
}

type chargeRow struct {
	Customer  string `json:"customer"`
	Period    string `json:"period"`
	Contract  string `json:"contract"`
	Item      string `json:"item"`
	Fee       string `json:"fee"`
	RateTable string `json:"rate_table"`
	Records   uint64 `json:"records"`
	Quantity  string `json:"quantity"`
	Amount    string `json:"amount"`
	Discount  string `json:"discount"`
	Currency  string `json:"currency"`
}

type fixedRow struct {
	Customer string `json:"customer"`
	Period   string `json:"period"`
	Contract string `json:"contract"`
	Fee      string `json:"fee"`
	From     string `json:"from"`
	To       string `json:"to"`
	BillOn   string `json:"bill_on"`
	Quantity int64  `json:"quantity"`
	Amount   string `json:"amount"`
	Discount string `json:"discount"`
	Currency string `json:"currency"`
}

type totalRow struct {
	Customer string `json:"customer"`
	Period   string `json:"period"`
	Currency string `json:"currency"`
	Metered  string `json:"metered"`
	Fixed    string `json:"fixed"`
	Total    string `json:"total"`
}

type unratedRow struct {
	Line       int    `json:"line"`
	ID         string `json:"id"`
	Customer   string `json:"customer"`
	Element    string `json:"element"`
	ReasonCode string `json:"reason_code"`
	Reason     string `json:"reason"`
}

type totalKey struct{ customer, period, currency string }

type totalSum struct{ metered, fixed decimal.Decimal }

func buildRateReport(e *pricing.Engine, cat *catalog.Catalogue, in *usageInput, b *pricing.Batch, only periodRange) *rateReport {
	rep := &rateReport{Rejected: in.rejected, Duplicates: in.duplicates}
	type acc struct {
		key      pricing.Key
		amount   int64
		discount int64
		places   int32
		currency string
	}
	charges := map[pricing.Key]*acc{}
	var order []pricing.Key
	for _, l := range b.Lines {
		if !only.has(l.Key.Period) {
			continue
		}
		a := charges[l.Key]
		if a == nil {
			a = &acc{key: l.Key, places: l.Line.Places, currency: l.Currency}
			charges[l.Key] = a
			order = append(order, l.Key)
		}
		a.amount += l.Line.Amount
		a.discount += l.Line.Discount
	}
	// Time-weighted charges are priced at the period's end (their lines
	// are zero): the period's amount is added to the charge.
	for _, pe := range b.PeriodEnd {
		if a := charges[pe.Key]; a != nil && pe.Reason == nil {
			a.amount += pe.Line.Amount
			a.discount += pe.Line.Discount
		}
	}
	totals := map[totalKey]*totalSum{}
	total := func(k totalKey) *totalSum {
		t := totals[k]
		if t == nil {
			t = &totalSum{}
			totals[k] = t
		}
		return t
	}
	for _, k := range order {
		a := charges[k]
		st := b.States[k]
		cur := money.Currency{Code: a.currency, Places: a.places}
		amount := decimal.New(a.amount, -a.places)
		rep.Charges = append(rep.Charges, chargeRow{Customer: k.Customer, Period: k.Period.String(), Contract: k.Contract,
			Item: k.Item(), Fee: k.Fee, RateTable: k.Rate, Records: st.Records(), Quantity: st.Quantity().String(),
			Amount: cur.Format(amount), Discount: cur.Format(decimal.New(a.discount, -a.places)), Currency: a.currency})
		t := total(totalKey{k.Customer, k.Period.String(), a.currency})
		t.metered = t.metered.Add(amount)
	}

	// Fixed fees of the periods that appear (or the one asked for).
	periods := map[pricing.PeriodID]bool{}
	if !only.all() {
		for p := only.lo; p <= only.hi; p = p.Next() {
			periods[p] = true
		}
	} else {
		for _, l := range b.Lines {
			periods[l.Key.Period] = true
		}
	}
	ids := make([]pricing.PeriodID, 0, len(periods))
	for p := range periods {
		ids = append(ids, p)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, sc := range cat.ServiceContracts {
		for _, p := range ids {
			lines, err := e.FixedCharges(sc.ID, p)
			if err != nil {
				continue
			}
			for _, l := range lines {
				cur, _ := money.LookupCurrency(l.Currency)
				rep.Fixed = append(rep.Fixed, fixedRow{Customer: sc.Customer, Period: p.String(), Contract: l.Contract, Fee: l.Fee,
					From: l.From.String(), To: l.To.String(), BillOn: l.BillOn.String(), Quantity: l.Quantity,
					Amount: cur.Format(l.Amount), Discount: cur.Format(l.Discount), Currency: l.Currency})
				t := total(totalKey{sc.Customer, p.String(), l.Currency})
				t.fixed = t.fixed.Add(l.Amount)
			}
			// The period's own lines: fee minimums of a period without
			// usage (plans with minimum_without_usage) and the plan's
			// commitment true-up — the lines the stream's emitter and the
			// receivable batch compute (pricing.Engine.PeriodLines).
			period, err := e.PeriodLines(sc.ID, p, b, false)
			if err != nil {
				continue
			}
			for _, l := range period {
				cur, _ := money.LookupCurrency(l.Currency)
				fee := l.Fee + " (minimum)"
				if l.TrueUp {
					fee = "(commitment true-up)"
				}
				rep.Fixed = append(rep.Fixed, fixedRow{Customer: sc.Customer, Period: p.String(), Contract: l.Contract, Fee: fee,
					From: l.From.String(), To: l.To.String(), BillOn: l.BillOn.String(), Quantity: l.Quantity,
					Amount: cur.Format(l.Amount), Discount: cur.Format(l.Discount), Currency: l.Currency})
				t := total(totalKey{sc.Customer, p.String(), l.Currency})
				t.fixed = t.fixed.Add(l.Amount)
			}
		}
	}

	keys := make([]totalKey, 0, len(totals))
	for k := range totals {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.customer != b.customer {
			return a.customer < b.customer
		}
		if a.period != b.period {
			return a.period < b.period
		}
		return a.currency < b.currency
	})
	for _, k := range keys {
		t := totals[k]
		cur, _ := money.LookupCurrency(k.currency)
		rep.Totals = append(rep.Totals, totalRow{Customer: k.customer, Period: k.period, Currency: k.currency,
			Metered: cur.Format(t.metered), Fixed: cur.Format(t.fixed), Total: cur.Format(t.metered.Add(t.fixed))})
	}
	sort.SliceStable(rep.Charges, func(i, j int) bool {
		a, b := rep.Charges[i], rep.Charges[j]
		if a.Customer != b.Customer {
			return a.Customer < b.Customer
		}
		return a.Period < b.Period
	})

	for _, u := range b.Unrated {
		ev := &in.events[u.Event]
		if !only.all() && !unratedInPeriod(e, ev, only) {
			continue
		}
		rep.Unrated = append(rep.Unrated, unratedRow{Line: in.lineOf[u.Event], ID: ev.ID, Customer: ev.Customer,
			Element: ev.Element, ReasonCode: u.Reason.Code, Reason: u.Reason.Reason})
	}
	return rep
}

// unratedInPeriod keeps an unrated record under --period when its time falls
// in that period for one of its customer's contracts (or, without a contract,
// in the calendar month).
func unratedInPeriod(e *pricing.Engine, ev *schemas.UsageEvent, only periodRange) bool {
	if ev.Contract != "" {
		if p, err := e.PeriodAt(ev.Contract, ev.Time); err == nil {
			return only.has(p.ID)
		}
	}
	return only.has(pricing.PeriodOfMonth(ev.Time.Year(), ev.Time.Month()))
}

// periodRange is the billing periods --period or --from/--to keep (the zero
// value: every period).
type periodRange struct{ lo, hi pricing.PeriodID }

func (r periodRange) all() bool { return r.lo == 0 }

func (r periodRange) has(p pricing.PeriodID) bool { return r.all() || p >= r.lo && p <= r.hi }

func (r *rateReport) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(r.Lines) > 0 {
		fmt.Fprintln(tw, "LINE	ID	CUSTOMER	PERIOD	ITEM	RATE TABLE	AMOUNT	RECORDS AFTER	QUANTITY AFTER	TOTAL AFTER	CURRENCY	")
		for _, l := range r.Lines {
			fmt.Fprintf(tw, "%d	%s	%s	%s	%s	%s	%s	%d	%s	%s	%s	\n", l.Line, l.ID, l.Customer, l.Period, l.Item, l.RateTable,
				l.Amount, l.Records, l.Quantity, l.Total, l.Currency)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	}
	fmt.Fprintln(tw, "CUSTOMER\tPERIOD\tCONTRACT\tITEM\tRATE TABLE\tRECORDS\tQUANTITY\tDISCOUNT\tAMOUNT\tCURRENCY\t")
	for _, c := range r.Charges {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", c.Customer, c.Period, c.Contract, c.Item, c.RateTable,
			c.Records, c.Quantity, c.Discount, c.Amount, c.Currency)
	}
	for _, f := range r.Fixed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.Customer, f.Period, f.Contract, f.Fee, "fixed "+f.From+".."+f.To,
			"-", fmt.Sprint(f.Quantity), f.Discount, f.Amount, f.Currency)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "CUSTOMER\tPERIOD\t\t\t\t\tMETERED\tFIXED\tTOTAL\tCURRENCY\t")
	for _, t := range r.Totals {
		fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t%s\t%s\t%s\t%s\t\n", t.Customer, t.Period, t.Metered, t.Fixed, t.Total, t.Currency)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, u := range r.Unrated {
		fmt.Fprintf(w, "unrated: line %d (id %s, customer %s, element %s): %s: %s\n", u.Line, u.ID, u.Customer, u.Element, u.ReasonCode, u.Reason)
	}
	for _, rj := range r.Rejected {
		var parts []string
		for _, e := range rj.Errors {
			parts = append(parts, strings.TrimPrefix(e.Field+": "+e.Reason, ": "))
		}
		fmt.Fprintf(w, "rejected: line %d: %s\n", rj.Line, strings.Join(parts, "; "))
	}
	for _, d := range r.Duplicates {
		fmt.Fprintf(w, "duplicate: line %d repeats id %q of line %d (priced once)\n", d.Line, d.ID, d.FirstLine)
	}
	return nil
}
