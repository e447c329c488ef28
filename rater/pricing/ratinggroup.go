package pricing

import (
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/schemas"
)

// Rating groups (catalog.RatingGroup, Zuora's usage rating by group): the
// group is part of the running charge's Key, so each group of a period has
// its own running state and is priced on its own; the period's amount is
// the sum of the groups' lines.

// The compiled rating groups (0: by billing period).
const (
	groupStartDate uint8 = iota + 1
	groupRecord
	groupUpload
)

var groupCodes = map[catalog.RatingGroup]uint8{
	catalog.GroupUsageStartDate: groupStartDate, catalog.GroupUsageRecord: groupRecord, catalog.GroupUpload: groupUpload,
}

// groupable reports whether a rate version's model is rated by group (as
// in Zuora: per unit, graduated and volume; the others by billing period).
func (r *rateVersion) groupable() bool {
	switch r.model {
	case catalog.ModelPerUnit, catalog.ModelGraduated, catalog.ModelVolume:
		return true
	}
	return false
}

// ratingGroup is the group of an event on its civil day (in the basic
// contract's time zone).
func ratingGroup(g uint8, ev *schemas.UsageEvent, day int32) string {
	switch g {
	case groupStartDate:
		return dateOf(day).String()
	case groupRecord:
		return ev.ID
	case groupUpload:
		if ev.Import != nil {
			if ev.Import.Job != "" {
				return ev.Import.Job
			}
			return ev.Import.File
		}
	}
	return ""
}
