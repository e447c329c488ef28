package catalogstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

// VersionError is a problem with a version operation's input.
type VersionError struct{ Field, Reason string }

func (e *VersionError) Error() string { return e.Field + ": " + e.Reason }

// AddVersion (追加) decodes one version of a master of kind k from raw JSON
// and adds it to doc (a version that does not decode gives a
// *catalog.DecodeError naming every problem). If the version starts while an open-ended version
// applies, that version is ended where the new one starts, so that a new
// price from a date is one call; other overlaps are left for validation to
// refuse.
func AddVersion(k Kind, doc any, raw []byte) error {
	switch d := doc.(type) {
	case *catalog.Service:
		return addVersion(&d.Versions, raw, func(v *catalog.ServiceVersion) *catalog.Validity { return &v.Validity })
	case *catalog.Plan:
		return addVersion(&d.Versions, raw, func(v *catalog.PlanVersion) *catalog.Validity { return &v.Validity })
	case *catalog.Fee:
		return addVersion(&d.Versions, raw, func(v *catalog.FeeVersion) *catalog.Validity { return &v.Validity })
	case *catalog.Element:
		return addVersion(&d.Versions, raw, func(v *catalog.ElementVersion) *catalog.Validity { return &v.Validity })
	case *catalog.RateTable:
		return addVersion(&d.Versions, raw, func(v *catalog.RateTableVersion) *catalog.Validity { return &v.Validity })
	case *catalog.DiscountTable:
		return addVersion(&d.Versions, raw, func(v *catalog.DiscountTableVersion) *catalog.Validity { return &v.Validity })
	}
	return fmt.Errorf("%s has no versions", k.Label())
}

func addVersion[V any](versions *[]V, raw []byte, validity func(*V) *catalog.Validity) error {
	var v V
	if err := catalog.DecodeJSON(raw, &v); err != nil {
		var de *catalog.DecodeError
		if errors.As(err, &de) {
			return de
		}
		return &VersionError{Field: "", Reason: "not a version of this master: " + err.Error()}
	}
	nv := validity(&v)
	if nv.ValidFrom.IsZero() {
		return &VersionError{Field: "valid_from", Reason: "is required"}
	}
	for i := range *versions {
		old := validity(&(*versions)[i])
		if old.ValidTo == nil && old.ValidFrom.Before(nv.ValidFrom) {
			end := nv.ValidFrom
			old.ValidTo = &end
		}
	}
	*versions = append(*versions, v)
	return nil
}

// EndVersion (適用終了) ends version n of doc at the instant at: the version
// stays, valid until then. at must fall after the version's start and, if
// it already ends, not after its end.
func EndVersion(k Kind, doc any, n int, at time.Time) error {
	switch d := doc.(type) {
	case *catalog.Service:
		return endVersion(d.Versions, n, at, func(v *catalog.ServiceVersion) *catalog.Validity { return &v.Validity })
	case *catalog.Plan:
		return endVersion(d.Versions, n, at, func(v *catalog.PlanVersion) *catalog.Validity { return &v.Validity })
	case *catalog.Fee:
		return endVersion(d.Versions, n, at, func(v *catalog.FeeVersion) *catalog.Validity { return &v.Validity })
	case *catalog.Element:
		return endVersion(d.Versions, n, at, func(v *catalog.ElementVersion) *catalog.Validity { return &v.Validity })
	case *catalog.RateTable:
		return endVersion(d.Versions, n, at, func(v *catalog.RateTableVersion) *catalog.Validity { return &v.Validity })
	case *catalog.DiscountTable:
		return endVersion(d.Versions, n, at, func(v *catalog.DiscountTableVersion) *catalog.Validity { return &v.Validity })
	}
	return fmt.Errorf("%s has no versions", k.Label())
}

func endVersion[V any](versions []V, n int, at time.Time, validity func(*V) *catalog.Validity) error {
	if n < 0 || n >= len(versions) {
		return &VersionError{Field: "n", Reason: fmt.Sprintf("no version %d (there are %d)", n, len(versions))}
	}
	v := validity(&versions[n])
	if !at.After(v.ValidFrom) {
		return &VersionError{Field: "valid_to", Reason: fmt.Sprintf("must be after the version's valid_from %s", v.ValidFrom.Format(time.RFC3339))}
	}
	if v.ValidTo != nil && at.After(*v.ValidTo) {
		return &VersionError{Field: "valid_to", Reason: fmt.Sprintf("the version already ends at %s; ending it later is an update", v.ValidTo.Format(time.RFC3339))}
	}
	end := at
	v.ValidTo = &end
	return nil
}

// Cancel (解約) ends a service or discount contract on the given last day and
// marks it cancelled; price plan terms are cut to that day (terms starting
// after it are dropped). The history keeps the contract as it was.
func Cancel(doc any, last catalog.Date) error {
	switch d := doc.(type) {
	case *catalog.ServiceContract:
		if last.Before(d.Start) {
			return &VersionError{Field: "end_date", Reason: "must not be before the contract's start_date " + d.Start.String()}
		}
		if d.End != nil && last.After(*d.End) {
			return &VersionError{Field: "end_date", Reason: "the contract already ends on " + d.End.String()}
		}
		end := last
		d.End, d.Cancelled = &end, true
		var plans []catalog.PricePlanTerm
		for _, p := range d.Plans {
			if p.Start.After(last) {
				continue
			}
			if p.End == nil || p.End.After(last) {
				e := last
				p.End = &e
			}
			plans = append(plans, p)
		}
		d.Plans = plans
		return nil
	case *catalog.DiscountContract:
		if last.Before(d.Start) {
			return &VersionError{Field: "end_date", Reason: "must not be before the contract's start_date " + d.Start.String()}
		}
		if d.End != nil && last.After(*d.End) {
			return &VersionError{Field: "end_date", Reason: "the contract already ends on " + d.End.String()}
		}
		end := last
		d.End, d.Cancelled = &end, true
		return nil
	}
	return fmt.Errorf("only service and discount contracts can be cancelled")
}

// CancelServiceContract cancels service contract id on its last day and,
// with it, every child contract and option (recursively) that runs past that
// day: options do not outlive what they belong to. A child that starts after
// the last day is an error (delete it instead).
func (tx *Tx) CancelServiceContract(id string, expect *uint64, last catalog.Date) error {
	if err := tx.check(KindServiceContract, id, expect); err != nil {
		return err
	}
	seen := map[string]bool{}
	var cancel func(id string, field string) error
	cancel = func(id, field string) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		err := tx.Modify(KindServiceContract, id, nil, func(v any) error { return Cancel(v, last) })
		var ve *VersionError
		if errors.As(err, &ve) && field != "" {
			return &ValidationError{Errors: []FieldError{{Kind: KindServiceContract, ID: id, Field: ve.Field,
				Reason: "child contract of the cancelled contract: " + ve.Reason}}}
		}
		if err != nil {
			return err
		}
		children, _ := tx.find(KindServiceContract, "parent", id, 1<<30)
		for _, c := range children {
			v, _ := tx.Get(KindServiceContract, c)
			if sc := v.(*catalog.ServiceContract); sc.End != nil && !sc.End.After(last) {
				continue // ends by then anyway
			}
			if err := cancel(c, "parent"); err != nil {
				return err
			}
		}
		return nil
	}
	return cancel(id, "")
}
