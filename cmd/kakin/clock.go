package main

import "time"

var tokyo = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Tokyo"); err == nil {
		return loc
	}
	return time.FixedZone("JST", 9*3600)
}()

// nowRFC3339 and nowPeriod give the demo examples a time in the demo tenant's zone.
func nowRFC3339() string { return time.Now().In(tokyo).Truncate(time.Second).Format(time.RFC3339) }
func nowPeriod() string  { return time.Now().In(tokyo).Format("2006-01") }
