package run

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kakin-dev/kakin/billing"
	"github.com/kakin-dev/kakin/billing/billingdb"
	"github.com/kakin-dev/kakin/rater/pricing"
)

// CloseResult is what a close did.
type CloseResult struct {
	Run       Result
	Finalised uint64
	FirstSeq  uint64 // the numbers assigned, FirstSeq..LastSeq (0 when none)
	LastSeq   uint64
	// Pins are the pipeline's end offsets the close waited for the stages
	// to commit before it computed (none without Options.Watermark).
	Pins []Pin
}

// finaliseChunk bounds the receivables finalised by one insert: each insert
// is one part, so the finalised receivables are always a prefix of the
// close's order, and their numbers a gapless run.
const finaliseChunk = 10_000

// Close closes a tenant's period: it marks the period closed (corrections of
// it are refused from then on), recomputes its drafts one last time at a
// fresh watermark (the same run as POST /v1/billing-runs), then finalises
// every draft in (customer, basic contract, id) order, giving each the
// tenant's next number (a draft that already had one, from before a reopen,
// keeps it), and records the close. Closing again, or after a crash at any
// point, finishes what is left: numbers continue from the highest assigned,
// in the same order, so none is skipped or given twice.
func (s *Service) Close(ctx context.Context, tenant, period, actor string) (CloseResult, error) {
	var res CloseResult
	if _, err := pricing.ParsePeriod(period); err != nil {
		return res, err
	}
	if c := s.o.Catalogues.Catalogue(tenant); c == nil || len(c.BasicContracts) == 0 {
		return res, ErrNoCatalogue
	}
	ctx, release, err := s.hold(ctx, tenant, "close")
	if err != nil {
		return res, err
	}
	defer release()
	if err := s.o.Periods.Set(ctx, tenant, period, true, actor); err != nil {
		return res, err
	}
	closed, err := s.o.Periods.Closed(ctx, tenant)
	if err != nil {
		return res, err
	}
	delete(closed, period) // the period itself is computed, not adjusted
	now := s.o.Now().UTC()
	// Corrections of the period are refused from here on; what the
	// pipeline holds of records received before now is waited for.
	if res.Pins, err = s.waitStages(ctx); err != nil {
		return res, fmt.Errorf("close %s: %w", period, err)
	}
	if res.Run, err = s.compute(ctx, Request{Tenant: tenant, RunID: "close:" + period, Period: period, Actor: actor,
		Watermark: now}, closed); err != nil {
		return res, err
	}
	finaliseStart := time.Now()
	format, err := s.o.Store.NumberFormat(ctx, tenant)
	if err != nil {
		return res, err
	}
	if format == "" {
		format = billing.DefaultNumberFormat
	}
	recs, err := s.o.Store.Period(ctx, tenant, period)
	if err != nil {
		return res, err
	}
	var drafts []*billingdb.Stored
	for _, r := range recs {
		if r.Status == billing.StatusDraft {
			drafts = append(drafts, r)
		}
	}
	sort.Slice(drafts, func(i, j int) bool {
		a, b := drafts[i], drafts[j]
		if a.Customer != b.Customer {
			return a.Customer < b.Customer
		}
		if a.BasicContract != b.BasicContract {
			return a.BasicContract < b.BasicContract
		}
		return a.ID < b.ID
	})
	next, err := s.o.Store.MaxNumber(ctx, tenant)
	if err != nil {
		return res, err
	}
	for start := 0; start < len(drafts); start += finaliseChunk {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("close %s: %w", period, err)
		}
		var ws []billingdb.Write
		for _, r := range drafts[start:min(start+finaliseChunk, len(drafts))] {
			w := billingdb.Write{Stored: *r, KeepLines: true}
			w.Status, w.IssuedAt, w.ChangedBy, w.Revision = billing.StatusFinal, now, actor, r.Revision+1
			if w.NumberSeq == 0 {
				next++
				w.NumberSeq = next
				if w.Number, err = billing.FormatNumber(format, next, period); err != nil {
					return res, err
				}
			}
			if res.FirstSeq == 0 || w.NumberSeq < res.FirstSeq {
				res.FirstSeq = w.NumberSeq
			}
			res.LastSeq = max(res.LastSeq, w.NumberSeq)
			ws = append(ws, w)
		}
		if err := s.o.Store.WriteReceivables(ctx, ws); err != nil {
			return res, err
		}
		res.Finalised += uint64(len(ws))
	}
	s.written.WithLabelValues("finalised").Add(float64(res.Finalised))
	s.o.Log.Info("billing close", "tenant", tenant, "period", period, "finalised", res.Finalised, "first_seq", res.FirstSeq,
		"last_seq", res.LastSeq, "finalise", time.Since(finaliseStart).Round(time.Millisecond).String())
	if err := s.o.Store.AddPeriodEvent(ctx, tenant, billingdb.PeriodEvent{Period: period, Action: "close", Actor: actor,
		At: now, FirstSeq: res.FirstSeq, LastSeq: res.LastSeq}); err != nil {
		return res, err
	}
	return res, nil
}

// latestClosed returns the tenant's latest closed period, or "": the one
// ending last (periodOrder), so that a tenant billing monthly and weekly
// contracts orders "2019-03" (ending on a day of March) after the week
// "2019-03-04/P1W", which the labels' text order would not.
func latestClosed(closed map[string]bool) string {
	latest := ""
	for p, c := range closed {
		if c && (latest == "" || periodAfter(p, latest)) {
			latest = p
		}
	}
	return latest
}

// periodAfter reports whether period label a ends after b: by the last day
// of each (of a monthly period, the last day of the month it ends in, its
// end at the latest whatever the closing day), then by the label; a label
// that does not parse orders by its text.
func periodAfter(a, b string) bool {
	pa, errA := pricing.ParsePeriod(a)
	pb, errB := pricing.ParsePeriod(b)
	if errA != nil || errB != nil {
		return a > b
	}
	if la, lb := pa.LastDay(), pb.LastDay(); la != lb {
		return la.After(lb)
	}
	return a > b
}

// Reopen reopens the tenant's latest closed period (any other is refused):
// its final receivables become drafts again, keeping their numbers (so the
// next close gives them the same ones), voided ones stay voided; the
// period's marker is cleared and the reopen recorded with its reason.
func (s *Service) Reopen(ctx context.Context, tenant, period, reason, actor string) (uint64, error) {
	if reason == "" {
		return 0, errors.New("a reopen needs a reason")
	}
	ctx, release, err := s.hold(ctx, tenant, "reopen")
	if err != nil {
		return 0, err
	}
	defer release()
	closed, err := s.o.Periods.Closed(ctx, tenant)
	if err != nil {
		return 0, err
	}
	if !closed[period] {
		return 0, fmt.Errorf("reopen %s: %w", period, ErrNotClosed)
	}
	if latest := latestClosed(closed); latest != period {
		return 0, fmt.Errorf("reopen %s: %w (the latest closed period is %s)", period, ErrNotLatest, latest)
	}
	recs, err := s.o.Store.Period(ctx, tenant, period)
	if err != nil {
		return 0, err
	}
	var ws []billingdb.Write
	for _, r := range recs {
		if r.Status != billing.StatusFinal {
			continue
		}
		w := billingdb.Write{Stored: *r, KeepLines: true}
		w.Status, w.ChangedBy, w.Revision = billing.StatusDraft, actor, r.Revision+1
		ws = append(ws, w)
	}
	if err := s.o.Store.WriteReceivables(ctx, ws); err != nil {
		return 0, err
	}
	if err := s.o.Periods.Set(ctx, tenant, period, false, actor); err != nil {
		return 0, err
	}
	if err := s.o.Store.AddPeriodEvent(ctx, tenant, billingdb.PeriodEvent{Period: period, Action: "reopen", Reason: reason,
		Actor: actor, At: s.o.Now().UTC()}); err != nil {
		return 0, err
	}
	return uint64(len(ws)), nil
}

// ErrAlreadyDeleted answers a delete of a voided or discarded receivable.
var ErrAlreadyDeleted = errors.New("the receivable is already deleted")

// ErrReasonRequired answers a void without a reason.
var ErrReasonRequired = errors.New("voiding a final receivable needs a reason")

// Delete deletes a receivable: a draft without a number is discarded; a
// final one (or a draft that has a number, from a reopened period) is
// voided with a reason and kept, its number never reused. It returns the
// new state, or nil when the tenant has no such receivable.
func (s *Service) Delete(ctx context.Context, tenant, id, reason, actor string) (*billingdb.Stored, error) {
	ctx, release, err := s.hold(ctx, tenant, "delete")
	if err != nil {
		return nil, err
	}
	defer release()
	r, err := s.o.Store.Get(ctx, tenant, id)
	if err != nil || r == nil {
		return nil, err
	}
	w := billingdb.Write{Stored: *r, KeepLines: true}
	w.ChangedBy, w.Revision, w.VoidReason = actor, r.Revision+1, reason
	switch {
	case r.Status == billing.StatusVoided || r.Status == billing.StatusDiscarded:
		return r, ErrAlreadyDeleted
	case r.Status == billing.StatusDraft && r.NumberSeq == 0:
		w.Status = billing.StatusDiscarded
	default:
		if reason == "" {
			return r, ErrReasonRequired
		}
		w.Status = billing.StatusVoided
	}
	if err := s.o.Store.WriteReceivables(ctx, []billingdb.Write{w}); err != nil {
		return nil, err
	}
	return &w.Stored, nil
}
