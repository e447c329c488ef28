package main

import (
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
)

var tokyo = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Tokyo"); err == nil {
		return loc
	}
	return time.FixedZone("JST", 9*3600)
}()

// nowRFC3339 and nowPeriod give the demo examples a time in the demo tenant's zone.
func nowRFC3339() string { return clock.Now().In(tokyo).Truncate(time.Second).Format(time.RFC3339) }
func nowPeriod() string  { return clock.Now().In(tokyo).Format("2006-01") }
