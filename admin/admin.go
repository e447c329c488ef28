// Package admin is the read-and-manage side of Kakin's HTTP API: the routes
// the admin role serves. Today that is the charges query over ClickHouse; the
// catalogue, customers and contracts join it here.
package admin

import (
	"net/http"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/kakin-dev/kakin/aggregator"
)

// Register mounts the admin routes on mux. Every route is wrapped in auth,
// which must put the caller's tenant in the request context.
func Register(mux *http.ServeMux, auth func(http.Handler) http.Handler, conn driver.Conn) {
	mux.Handle("GET /v1/charges", auth(aggregator.NewCharges(conn)))
}
