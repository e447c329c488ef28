package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/ingest"
)

// config is every setting of a Kakin process. Each field is a flag, and each
// flag can also be set by an environment variable: --kafka-brokers is
// KAKIN_KAFKA_BROKERS. Flags win over the environment.
type config struct {
	Roles          string
	HTTPAddr       string
	KafkaBrokers   string
	Partitions     int
	RetentionHours int
	RedisAddr      string
	// DedupeRedisCluster are the seed nodes of a Redis Cluster for the
	// dedupe claims; empty: the claims live in RedisAddr.
	DedupeRedisCluster  string
	CHAddr              string
	CHDatabase          string
	CHCluster           string
	RedisSentinelAddrs  string
	RedisSentinelMaster string
	CHUser              string
	CHPassword          string
	PriceList           string
	DedupeWindow        time.Duration
	RaterStateTTL       time.Duration
	RerateWait          time.Duration
	MaxBodyBytes        int64
	MaxRecords          int
	MaxFutureSkew       time.Duration
	BatchSize           int
	FlushInterval       time.Duration
	SessionTimeout      time.Duration
	LogLevel            string
	LogFormat           string

	DevInsecure        bool
	TokenKeysFile      string
	TokenTTL           time.Duration
	RevocationRefresh  time.Duration
	TenantRefresh      time.Duration
	IngestEventsPerSec int
	IngestReqsPerSec   int
	AdminReqsPerMin    int
	// TokenPerAddrPerMin and TokenPerClientPerMin limit POST /oauth/token
	// before any secret is hashed.
	TokenPerAddrPerMin   int
	TokenPerClientPerMin int
	PageMaxSize          int
	IdempotencyTTL       time.Duration
	TLSCert              string
	TLSKey               string

	ImportDir           string
	ReportDir           string
	MaxImportBytes      int64
	JobLease            time.Duration
	JobWorkers          int
	MasterKeyFile       string
	CatalogPollInterval time.Duration
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Roles, "roles", "all", "roles to run: all, or a comma list of ingest,dedupe,rater,aggregator,admin")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address (API, /metrics, /healthz, /readyz)")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", "127.0.0.1:19092", "comma list of Kafka bootstrap brokers (KAFKA_BROKERS is honoured too)")
	fs.IntVar(&c.Partitions, "partitions", 12, "partitions per topic, used by migrate when it creates topics")
	fs.IntVar(&c.RetentionHours, "retention-hours", 24*7, "retention of pipeline topics, used by migrate; records are timestamped at ingest")
	fs.StringVar(&c.RedisAddr, "redis-addr", "127.0.0.1:16379", "Redis address: dedupe claims, rater running state, locks, leases, rate limits")
	fs.StringVar(&c.RedisSentinelAddrs, "redis-sentinel-addrs", "", "comma list of Redis Sentinels; when set, the main Redis is the primary they name for --redis-sentinel-master (followed across failovers) and --redis-addr is not used")
	fs.StringVar(&c.RedisSentinelMaster, "redis-sentinel-master", "", "the master name the Sentinels of --redis-sentinel-addrs monitor")
	fs.StringVar(&c.DedupeRedisCluster, "dedupe-redis-cluster", "", "comma list of seed nodes of a Redis Cluster that holds the dedupe claims instead of --redis-addr, spread over its masters (one Redis core caps the claims at ~190,000-270,000 checks/s)")
	fs.StringVar(&c.CHAddr, "clickhouse-addr", "127.0.0.1:19000", "ClickHouse native-protocol address")
	fs.StringVar(&c.CHDatabase, "clickhouse-database", "kakin", "ClickHouse database")
	fs.StringVar(&c.CHCluster, "clickhouse-cluster", "", "ClickHouse cluster (remote_servers) to run on: migrate creates replicated tables and Distributed tables ON CLUSTER, inserts go through the Distributed tables synchronously; empty = one server")
	fs.StringVar(&c.CHUser, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&c.CHPassword, "clickhouse-password", "", "ClickHouse password")
	fs.StringVar(&c.PriceList, "price-list", "deploy/demo/pricelist.json", "per-unit price list file for tenants without a price plan in the catalogue store")
	fs.DurationVar(&c.RaterStateTTL, "rater-state-ttl", 100*24*time.Hour, "how long the rater keeps a charge's running period state after its last change; must outlast the dedupe window plus a billing period")
	fs.DurationVar(&c.RerateWait, "rerate-wait", 2*time.Minute, "how long the rater waits for the aggregator to store every record before a re-rate request (longer: the batch fails and is retried); the rater's deadline per batch is this plus 30s")
	fs.DurationVar(&c.DedupeWindow, "dedupe-window", 35*24*time.Hour, "default duplicate-detection window of a tenant without its own (kakin tenants set-dedupe-window): how long its event ids are remembered; ingest refuses events older than this")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", ingest.DefaultLimits.MaxBodyBytes, "largest accepted ingest request body, in bytes (413 above)")
	fs.IntVar(&c.MaxRecords, "max-records", ingest.DefaultLimits.MaxRecords, "most records in one ingest request (413 above)")
	fs.DurationVar(&c.MaxFutureSkew, "max-future-skew", ingest.DefaultLimits.MaxFutureSkew, "how far in the future an event time may be")
	fs.IntVar(&c.BatchSize, "batch-size", 5000, "records per consumer batch (and per ClickHouse insert) at most")
	fs.DurationVar(&c.FlushInterval, "flush-interval", 200*time.Millisecond, "longest wait to fill a consumer batch once it has a record")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 10*time.Second, "consumer-group session timeout: how soon a dead member's partitions move")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&c.DevInsecure, "dev-insecure", false, "DEVELOPMENT ONLY: trust the Kakin-Tenant header instead of access tokens")
	fs.StringVar(&c.TokenKeysFile, "token-keys-file", ".run/token-keys", "access-token signing keys, one `kid base64url-secret` per line; the first signs, all verify")
	fs.DurationVar(&c.TokenTTL, "token-ttl", time.Hour, "lifetime of issued access tokens")
	fs.DurationVar(&c.RevocationRefresh, "revocation-refresh", 15*time.Second, "how often revoked clients are reloaded (a revoked client's tokens stop within this)")
	fs.DurationVar(&c.TenantRefresh, "tenant-refresh", 30*time.Second, "how often tenant settings (dedupe windows) are reloaded from ClickHouse; a changed window applies within this")
	fs.IntVar(&c.IngestEventsPerSec, "rate-ingest-events", 100000, "default events per second per client on POST /v1/usage")
	fs.IntVar(&c.IngestReqsPerSec, "rate-ingest-requests", 500, "default ingest requests per second per client")
	fs.IntVar(&c.AdminReqsPerMin, "rate-admin-requests", 1200, "default admin API requests per minute per client")
	fs.IntVar(&c.TokenPerAddrPerMin, "rate-token-per-address", 60, "POST /oauth/token requests per minute per remote address (the connection's peer, an IPv6 address by its /64; X-Forwarded-For is not trusted), checked before the client secret is hashed; 429 above")
	fs.IntVar(&c.TokenPerClientPerMin, "rate-token-per-client", 60, "POST /oauth/token requests per minute per client id attempted (known or not), checked before the client secret is hashed; 429 above")
	fs.IntVar(&c.PageMaxSize, "page-max-size", 1000, "largest pageSize a list or search accepts (default page size is 10)")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", 24*time.Hour, "how long an Idempotency-Key's answer is remembered")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file; with --tls-key, HTTPS is served")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file")
	fs.StringVar(&c.ImportDir, "import-dir", "", "directory usage imports are spooled to until their job ends (empty: kakin-imports in the system temp dir; kakin dev: <data-dir>/imports); every process of the ingest role must see the same one")
	fs.StringVar(&c.ReportDir, "report-dir", "", "directory usage report files are kept in until the report is deleted (empty: kakin-reports in the system temp dir); every process of the admin role must see the same one")
	fs.Int64Var(&c.MaxImportBytes, "max-import-bytes", 512<<20, "largest accepted usage import file, in bytes (413 above)")
	fs.DurationVar(&c.JobLease, "job-lease", 15*time.Second, "lease of a running job, renewed every third of it; a job of a crashed process is resumed elsewhere after about this long")
	fs.IntVar(&c.JobWorkers, "job-workers", 2, "jobs (usage imports) one process runs at once")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", ".run/master-key", "master keys that wrap each tenant's data key for customers' personal fields, one `kid base64url-secret` (32 bytes) per line; the first wraps, all unwrap")
	fs.DurationVar(&c.CatalogPollInterval, "catalog-poll-interval", 250*time.Millisecond, "how often each process polls ClickHouse for catalogue changes (a change reaches every process within about this)")
}

// envName is the environment variable for a flag.
func envName(flagName string) string {
	return "KAKIN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags applies the environment, then the command line.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok && f.Name == "kafka-brokers" {
			v, ok = os.LookupEnv("KAFKA_BROKERS")
		}
		if ok && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	return fs.Parse(args)
}

// importDir is the directory imports are spooled to.
func (c *config) importDir() string {
	if c.ImportDir != "" {
		return c.ImportDir
	}
	return filepath.Join(os.TempDir(), "kakin-imports")
}

func (c *config) brokers() []string { return splitList(c.KafkaBrokers) }

// splitList splits a comma list, dropping blanks.
func splitList(list string) []string {
	var out []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// configTable renders every flag as a Markdown table row, for the README.
func configTable(fs *flag.FlagSet) string {
	var rows []string
	fs.VisitAll(func(f *flag.Flag) {
		rows = append(rows, fmt.Sprintf("| `--%s` | `%s` | `%s` | %s |", f.Name, envName(f.Name), f.DefValue, f.Usage))
	})
	sort.Strings(rows)
	return "| flag | environment | default | meaning |\n|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
}
