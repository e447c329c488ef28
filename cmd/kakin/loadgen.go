package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/rater/pricelist"
	"github.com/kakin-dev/kakin/tools/loadgen"
)

// runLoadgen posts realistic usage at a target rate, reports accepted
// events/s and ingest-to-queryable latency, and checks that ClickHouse holds
// exactly the expected totals. It fails when they differ.
func runLoadgen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kakin loadgen", flag.ContinueOnError)
	var (
		cfg       loadgen.Config
		ch        chdb.Config
		priceList string
		jsonOut   bool
		logQuery  bool
		tiered    bool
		printCat  bool
		printCus  bool
		logCfg    app.LogConfig
	)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "ingest base URL; usage is posted to <url>/v1/usage")
	fs.StringVar(&cfg.Tenant, "tenant", "loadgen", "tenant the events belong to; its price list entry must price any customer")
	var clientID, clientSecret string
	fs.StringVar(&clientID, "client-id", "", "API client to post as (needs usage:write); without it the development Kakin-Tenant header is sent")
	fs.StringVar(&clientSecret, "client-secret", "", "the API client's secret")
	fs.IntVar(&cfg.Events, "events", 100000, "unique events to send")
	fs.Float64Var(&cfg.Rate, "rate", 0, "target records per second (0 = as fast as possible)")
	fs.IntVar(&cfg.Batch, "batch", 1000, "records per request")
	fs.IntVar(&cfg.Concurrency, "concurrency", 4, "requests in flight")
	fs.IntVar(&cfg.Customers, "customers", 1000, "distinct customers (chosen with a skew: a few heavy ones)")
	fs.Float64Var(&cfg.DuplicateShare, "duplicate-share", 0.05, "extra records that re-send an earlier event unchanged, as a fraction of --events")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "traffic seed; the same seed gives the same traffic (0 = random)")
	fs.StringVar(&priceList, "price-list", "deploy/demo/pricelist.json", "price list the expected amounts are computed with (the one the rater uses)")
	fs.StringVar(&ch.Addr, "clickhouse-addr", "127.0.0.1:19000", "ClickHouse native-protocol address")
	fs.StringVar(&ch.Database, "clickhouse-database", "kakin", "ClickHouse database")
	fs.StringVar(&ch.User, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&ch.Password, "clickhouse-password", "", "ClickHouse password")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "how long to wait after sending for ClickHouse to hold the full totals")
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	fs.StringVar(&cfg.RunID, "run-id", "", "run id prefixing every customer and event id (default: time-based and random)")
	fs.BoolVar(&tiered, "catalog-tiered", false, "the tenant is priced by loadgen's tiered catalogue (graduated tiers, running state; apply it first with --print-catalog and kakin catalog apply): expected totals from that catalogue instead of --price-list")
	fs.BoolVar(&printCat, "print-catalog", false, "print the tiered catalogue file for --run-id and --customers and exit")
	fs.BoolVar(&printCus, "print-customers", false, "print the customer ids of --run-id and --customers, one a line, and exit (create them before applying the tiered catalogue)")
	fs.BoolVar(&logQuery, "clickhouse-log-queries", false, "log loadgen's own ClickHouse queries in system.query_log (log_queries = 1), to measure their share of ClickHouse's CPU")
	logCfg.RegisterFlags(fs)
	if err := app.ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Log = logCfg.Logger(os.Stderr)
	if printCus {
		if !loadgen.ValidRunID(cfg.RunID) {
			return fmt.Errorf("--run-id %q: want 1-40 of a-z, 0-9, '-'", cfg.RunID)
		}
		_, err := os.Stdout.WriteString(strings.Join(loadgen.RunCustomers(cfg.RunID, cfg.Customers), "\n") + "\n")
		return err
	}
	if printCat || tiered {
		if !loadgen.ValidRunID(cfg.RunID) {
			return fmt.Errorf("--run-id %q: the tiered catalogue names the run's customers, give the run id (1-40 of a-z, 0-9, '-')", cfg.RunID)
		}
		doc := loadgen.TieredCatalogue(cfg.RunID, cfg.Customers)
		if printCat {
			_, err := os.Stdout.WriteString(doc)
			return err
		}
		eng, err := loadgen.CompileCatalogue(doc)
		if err != nil {
			return err
		}
		cfg.Engine = eng
	}
	if clientID != "" {
		tok, err := fetchToken(ctx, cfg.URL, clientID, clientSecret)
		if err != nil {
			return err
		}
		cfg.Token = tok
	}

	if cfg.Engine == nil {
		pl, err := pricelist.Load(priceList)
		if err != nil {
			return err
		}
		cfg.PriceList = pl
	}
	conn, err := chdb.Open(ctx, ch)
	if err != nil {
		return err
	}
	defer conn.Close()
	store := loadgen.NewClickHouse(conn)
	store.LogQueries = logQuery
	cfg.Store = store

	res, runErr := loadgen.Run(ctx, cfg)
	if res != nil {
		if jsonOut {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(res); err != nil {
				return err
			}
		} else if err := res.WriteText(os.Stdout); err != nil {
			return err
		}
	}
	return runErr
}

// fetchToken obtains an access token with the client-credentials grant.
func fetchToken(ctx context.Context, baseURL, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token: %s %s", resp.Status, body.Error)
	}
	return body.AccessToken, nil
}
