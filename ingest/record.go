package ingest

import (
	"encoding/json"
	"time"

	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/schemas"
)

// ParseRecord decodes and validates one usage record exactly as POST
// /v1/usage does (fields, quantity scale and range, time, attributes), for
// offline tools such as `kakin rate`. The time windows of lim apply relative
// to now; zero values disable them.
func ParseRecord(raw []byte, tenant string, now time.Time, lim Limits) (schemas.UsageEvent, []httpapi.FieldError) {
	return parseEvent(json.RawMessage(raw), tenant, now, lim)
}
