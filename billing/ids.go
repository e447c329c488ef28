package billing

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/zeebo/xxh3"
)

func writeField(h *xxh3.Hasher, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	_, _ = h.Write(n[:])
	_, _ = h.WriteString(s)
}

func hash128(fields ...string) string {
	h := xxh3.New()
	for _, f := range fields {
		writeField(h, f)
	}
	sum := h.Sum128().Bytes()
	return hex.EncodeToString(sum[:])
}

// ReceivableID derives a receivable's id from (tenant, basic contract,
// period): one receivable per basic contract and period, whichever run
// computes it, so a re-run or a resumed run writes the same rows. The id
// starts with the period, so a lookup by id is a lookup by the table's
// sorting key: rcv_YYYYMM_ for a monthly period, rcv_YYYYMMDDd_ for a daily
// one (YYYY-MM-DD) and rcv_YYYYMMDDw_ for a weekly one (YYYY-MM-DD/P1W), so
// that the id holds no '/' and stays one URL path segment.
func ReceivableID(tenant, basicContract, period string) string {
	tag := strings.ReplaceAll(period, "-", "")
	switch {
	case len(period) == 14 && strings.HasSuffix(period, "/P1W"):
		tag = strings.ReplaceAll(period[:10], "-", "") + "w"
	case len(period) == 10:
		tag += "d"
	}
	return "rcv_" + tag + "_" + hash128("receivable", tenant, basicContract, period)
}

// PeriodOfID returns the billing period (YYYY-MM, YYYY-MM-DD or
// YYYY-MM-DD/P1W) a receivable id names, or false when s is not a
// receivable id.
func PeriodOfID(s string) (string, bool) {
	n := strings.IndexByte(s, '_')
	if n != 3 || !strings.HasPrefix(s, "rcv_") {
		return "", false
	}
	tagLen := len(s) - (4 + 1 + 32)
	if tagLen != 6 && tagLen != 9 || s[4+tagLen] != '_' {
		return "", false
	}
	tag, kind := s[4:4+tagLen], byte(0)
	if tagLen == 9 {
		tag, kind = tag[:8], tag[8]
		if kind != 'd' && kind != 'w' {
			return "", false
		}
	}
	for _, c := range tag + s[5+tagLen:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	for _, c := range tag {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	p := tag[0:4] + "-" + tag[4:6]
	if p[5:] < "01" || p[5:] > "12" {
		return "", false
	}
	if kind == 0 {
		return p, true
	}
	p += "-" + tag[6:8]
	if p[8:] < "01" || p[8:] > "31" {
		return "", false
	}
	if kind == 'w' {
		p += "/P1W"
	}
	return p, true
}

// LineID derives a detail line's id from its receivable and everything that
// tells the line apart (kind, contract, item, rate table, charge period and
// first day, tax category and rate, note).
func LineID(receivableID string, l *Line) string {
	return hash128("receivable_line", receivableID, string(l.Kind), l.Contract, l.Plan, l.Item, l.Rate,
		l.ChargePeriod, l.ChargeFrom.String(), string(l.TaxCategory), l.TaxRate.String(),
		strconv.FormatBool(l.TaxInclusive), l.Note)
}

// RunID derives a billing run's id from the job that runs it.
func RunID(tenant, jobID string) string { return "brun_" + hash128("billing_run", tenant, jobID)[:24] }

// contentHash hashes everything a receivable says except its id.
func contentHash(r *Receivable) string {
	f := []string{r.Tenant, r.Customer, r.BasicContract, r.Period, r.PeriodStart.String(), r.PeriodEnd.String(),
		r.TimeZone, r.Currency, string(r.Rounding), r.Subtotal.String(), r.Discounts.String(), r.Adjustments.String(),
		r.TaxExclusive.String(), r.TaxIncluded.String(), r.Total.String()}
	if !r.RoundingAmount.IsZero() { // only then: the hashes of receivables without rounding stay as they were
		f = append(f, "rounding", r.RoundingAmount.String())
	}
	for _, t := range r.Taxes {
		f = append(f, string(t.Category), t.Rate.String(), strconv.FormatBool(t.Inclusive), t.Subtotal.String(),
			t.Discounts.String(), t.Adjust.String(), t.Base.String(), t.Tax.String())
		if !t.Rounding.IsZero() {
			f = append(f, "rounding", t.Rounding.String())
		}
	}
	for _, l := range r.Lines {
		f = append(f, l.ID, strconv.Itoa(l.Seq), string(l.Kind), l.Contract, l.Plan, l.Fee, l.Item, l.Rate,
			l.Quantity.String(), l.UnitPrice.String(), strconv.FormatBool(l.UnitPriced), l.Amount.String(),
			string(l.TaxCategory), l.TaxRate.String(), strconv.FormatBool(l.TaxInclusive), l.Tax.String(),
			l.ChargePeriod, l.ChargeFrom.String(), l.ChargeTo.String(), l.BillingPeriod, l.Note)
	}
	return hash128(f...)
}

// DefaultNumberFormat is the invoice number format of a tenant that set none.
const DefaultNumberFormat = "INV-{seq:8}"

// FormatNumber renders a receivable's number from a tenant's format: literal
// text with the placeholders {seq} or {seq:N} (the tenant's gapless sequence
// number, zero-padded to N digits), {yyyy} and {mm} (of the billing period).
// For example "INV-{yyyy}{mm}-{seq:6}" gives "INV-202611-000042".
func FormatNumber(format string, seq uint64, period string) (string, error) {
	if err := CheckNumberFormat(format); err != nil {
		return "", err
	}
	var b strings.Builder
	rest := format
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		ph := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		switch {
		case ph == "seq":
			b.WriteString(strconv.FormatUint(seq, 10))
		case strings.HasPrefix(ph, "seq:"):
			n, _ := strconv.Atoi(ph[4:])
			fmt.Fprintf(&b, "%0*d", n, seq)
		case ph == "yyyy":
			b.WriteString(period[:4])
		case ph == "mm":
			b.WriteString(period[5:7])
		}
	}
}

// CheckNumberFormat validates a number format: at most 64 characters,
// printable ASCII, placeholders {seq}, {seq:N} (N 1–20), {yyyy}, {mm}, and
// exactly one seq placeholder (numbers must be unique).
func CheckNumberFormat(format string) error {
	if format == "" || len(format) > 64 {
		return fmt.Errorf("number format must be 1-64 characters")
	}
	seqs := 0
	rest := format
	for rest != "" {
		c := rest[0]
		if c < 0x20 || c > 0x7e || c == '}' {
			return fmt.Errorf("number format %q: character %q is not allowed", format, c)
		}
		if c != '{' {
			rest = rest[1:]
			continue
		}
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return fmt.Errorf("number format %q: unclosed {", format)
		}
		ph := rest[1:j]
		switch {
		case ph == "seq":
			seqs++
		case strings.HasPrefix(ph, "seq:"):
			n, err := strconv.Atoi(ph[4:])
			if err != nil || n < 1 || n > 20 {
				return fmt.Errorf("number format %q: {seq:N} needs N from 1 to 20", format)
			}
			seqs++
		case ph == "yyyy", ph == "mm":
		default:
			return fmt.Errorf("number format %q: unknown placeholder {%s} (want {seq}, {seq:N}, {yyyy} or {mm})", format, ph)
		}
		rest = rest[j+1:]
	}
	if seqs != 1 {
		return fmt.Errorf("number format %q: needs exactly one {seq} placeholder", format)
	}
	return nil
}
