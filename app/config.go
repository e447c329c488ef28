package app

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/ingest"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/redismain"
	"github.com/kakin-dev/kakin/internal/stream"
	"github.com/redis/go-redis/v9"
)

// Config is every setting of a Kakin process, one section per module. Each
// field is a flag (RegisterFlags), and each flag can also be set by an
// environment variable (ParseFlags): --kafka-brokers is KAKIN_KAFKA_BROKERS.
type Config struct {
	// Roles are the roles to run: all, a group, or a comma list of roles.
	Roles      string
	Log        LogConfig
	HTTP       HTTPConfig
	Kafka      KafkaConfig
	Redis      RedisConfig
	ClickHouse ClickHouseConfig
	Tenants    TenantsConfig
	API        APIConfig
	Jobs       JobsConfig
	Catalog    CatalogConfig
	Ingest     IngestConfig
	Dedupe     DedupeConfig
	Rater      RaterConfig
	Admin      AdminConfig
}

// RegisterFlags registers the flags of every section on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Roles, "roles", "all", "roles to run: all, or a comma list of ingest,dedupe,rater,aggregator,admin")
	c.Log.RegisterFlags(fs)
	c.HTTP.RegisterFlags(fs)
	c.Kafka.RegisterFlags(fs)
	c.Redis.RegisterFlags(fs)
	c.ClickHouse.RegisterFlags(fs)
	c.Tenants.RegisterFlags(fs)
	c.API.RegisterFlags(fs)
	c.Jobs.RegisterFlags(fs)
	c.Catalog.RegisterFlags(fs)
	c.Ingest.RegisterFlags(fs)
	c.Dedupe.RegisterFlags(fs)
	c.Rater.RegisterFlags(fs)
	c.Admin.RegisterFlags(fs)
}

// Validate checks the roles and the sections a process of those roles
// uses: the shared ones, and each role's own.
func (c *Config) Validate() error {
	roles, err := ParseRoles(c.Roles)
	if err != nil {
		return err
	}
	errs := []error{c.HTTP.Validate(), c.Kafka.Validate()}
	for _, r := range roles {
		switch r {
		case Ingest:
			errs = append(errs, c.Ingest.Validate())
		case Dedupe:
			errs = append(errs, c.Dedupe.Validate())
		case Rater:
			errs = append(errs, c.Rater.Validate())
		case Admin:
			errs = append(errs, c.Admin.Validate())
		}
	}
	return errors.Join(errs...)
}

// LogConfig is how a process logs.
type LogConfig struct {
	Level  string
	Format string
}

// RegisterFlags registers --log-level and --log-format.
func (c *LogConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.Format, "log-format", "text", "log format: text or json")
}

// Logger returns a logger writing to w at the configured level (info when
// it is not one) and in the configured format.
func (c LogConfig) Logger(w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// HTTPConfig is the process's HTTP listener: the API, /metrics, /healthz
// and /readyz.
type HTTPConfig struct {
	Addr    string
	TLSCert string
	TLSKey  string
	// Pprof is the loopback address of the net/http/pprof listener; empty:
	// off.
	Pprof string
}

// RegisterFlags registers --http-addr, --tls-cert and --tls-key.
func (c *HTTPConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "http-addr", "127.0.0.1:8080", "HTTP listen address (API, /metrics, /healthz, /readyz)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file; with --tls-key, HTTPS is served")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file")
	fs.StringVar(&c.Pprof, "pprof", "", "loopback HOST:PORT to serve net/http/pprof on, for profiling a running process (empty: off)")
}

// Validate refuses a certificate without its key and a key without its
// certificate (HTTPS needs both).
func (c *HTTPConfig) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both for HTTPS, or neither")
	}
	return nil
}

// KafkaConfig is the brokers, the topics migrate creates, and how the
// stages' consumers fetch.
type KafkaConfig struct {
	Brokers        string
	Partitions     int
	RetentionHours int
	// ReplicationFactor and MinInsyncReplicas are the topics' (migrate).
	ReplicationFactor int
	MinInsyncReplicas int
	BatchSize         int
	FlushInterval     time.Duration
	// HopFlushInterval is the fill wait of the dedupe and rater consumers;
	// 0 is FlushInterval.
	HopFlushInterval time.Duration
	SessionTimeout   time.Duration
	// WireJSON writes the records between stages as JSON
	// (schemas.SetWireJSON), for a rolling upgrade.
	WireJSON bool

	// TLS, TLSCA, TLSCert, TLSKey and TLSInsecureSkipVerify are how every
	// Kafka client encrypts (stream.TLSConfig); a CA, certificate or key
	// file turns TLS on.
	TLS                   bool
	TLSCA                 string
	TLSCert               string
	TLSKey                string
	TLSInsecureSkipVerify bool
	// SASLMechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; empty: none),
	// SASLUsername and the password, given in SASLPassword (its
	// environment variable KAKIN_KAFKA_SASL_PASSWORD, so that it is not on
	// the command line) or read from SASLPasswordFile.
	SASLMechanism    string
	SASLUsername     string
	SASLPassword     string
	SASLPasswordFile string
}

// RegisterFlags registers the Kafka flags.
func (c *KafkaConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Brokers, "kafka-brokers", "127.0.0.1:19092", "comma list of Kafka bootstrap brokers (KAFKA_BROKERS is honoured too)")
	fs.IntVar(&c.Partitions, "partitions", 12, "partitions per topic, used by migrate when it creates topics")
	fs.IntVar(&c.RetentionHours, "retention-hours", 24*7, "retention of pipeline topics, used by migrate; records are timestamped at ingest")
	fs.IntVar(&c.ReplicationFactor, "replication-factor", 1, "replication factor of the pipeline topics, used by migrate (production Kafka: 3)")
	fs.IntVar(&c.MinInsyncReplicas, "min-insync-replicas", 0, "min.insync.replicas of the pipeline topics, used by migrate; 0 = the broker's default (production Kafka: 2, with acks=all)")
	fs.IntVar(&c.BatchSize, "batch-size", 5000, "records per consumer batch at most; the aggregator takes 10 times this (its batch spans five topics and makes one ClickHouse insert per table)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", 200*time.Millisecond, "longest wait to fill a consumer batch once it has a record")
	fs.DurationVar(&c.HopFlushInterval, "hop-flush-interval", 20*time.Millisecond, "longest wait to fill a dedupe or rater batch once it has a record (0: --flush-interval); the aggregator waits --flush-interval, which buys large ClickHouse inserts")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 10*time.Second, "consumer-group session timeout: how soon a dead member's partitions move")
	fs.BoolVar(&c.WireJSON, "kafka-wire-json", false, "write usage events, rated lines and unrated records between stages as JSON instead of the binary encoding (readers take both): for a rolling upgrade from a version that reads only JSON")
	fs.BoolVar(&c.TLS, "kafka-tls", false, "connect to Kafka over TLS (every client: producers, consumers, readiness, migrate); implied by --kafka-tls-ca, --kafka-tls-cert and --kafka-tls-key")
	fs.StringVar(&c.TLSCA, "kafka-tls-ca", "", "PEM file of the CA certificates that sign the Kafka brokers' certificates (empty: the system's roots)")
	fs.StringVar(&c.TLSCert, "kafka-tls-cert", "", "PEM client certificate for Kafka mutual TLS; with --kafka-tls-key")
	fs.StringVar(&c.TLSKey, "kafka-tls-key", "", "PEM private key of --kafka-tls-cert")
	fs.BoolVar(&c.TLSInsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "TESTING ONLY: do not verify the Kafka brokers' certificates (anyone on the path can read and alter the stream)")
	fs.StringVar(&c.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism of every Kafka client: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL); PLAIN sends the password as is, use it only with --kafka-tls")
	fs.StringVar(&c.SASLUsername, "kafka-sasl-username", "", "SASL user name of every Kafka client")
	fs.StringVar(&c.SASLPassword, "kafka-sasl-password", "", "SASL password; set it through the environment (KAKIN_KAFKA_SASL_PASSWORD) or --kafka-sasl-password-file, never on the command line")
	fs.StringVar(&c.SASLPasswordFile, "kafka-sasl-password-file", "", "file holding the SASL password (trailing newline ignored); instead of --kafka-sasl-password")
}

// Validate refuses an empty broker list and inconsistent TLS and SASL
// settings, naming the flag.
func (c *KafkaConfig) Validate() error {
	var errs []error
	if len(c.BrokerList()) == 0 {
		errs = append(errs, errors.New("no kafka brokers configured (--kafka-brokers)"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--kafka-tls-cert and --kafka-tls-key go together: give both for Kafka mutual TLS, or neither"))
	}
	if c.TLSInsecureSkipVerify && c.TLSCA != "" {
		errs = append(errs, errors.New("--kafka-tls-insecure-skip-verify with --kafka-tls-ca: the CA would not be checked; give one or the other"))
	}
	mech := strings.ToUpper(c.SASLMechanism)
	switch {
	case mech == "":
		if c.SASLUsername != "" || c.SASLPassword != "" || c.SASLPasswordFile != "" {
			errs = append(errs, errors.New("--kafka-sasl-username or a password without --kafka-sasl-mechanism: name the mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"))
		}
	case !slices.Contains(stream.SASLMechanisms, mech):
		errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %q: want one of %s", c.SASLMechanism, strings.Join(stream.SASLMechanisms, ", ")))
	default:
		if c.SASLUsername == "" {
			errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %s needs --kafka-sasl-username", mech))
		}
		switch {
		case c.SASLPassword != "" && c.SASLPasswordFile != "":
			errs = append(errs, errors.New("--kafka-sasl-password and --kafka-sasl-password-file: give one"))
		case c.SASLPassword == "" && c.SASLPasswordFile == "":
			errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %s needs a password: KAKIN_KAFKA_SASL_PASSWORD (--kafka-sasl-password) or --kafka-sasl-password-file", mech))
		}
	}
	return errors.Join(errs...)
}

// TLSOn reports whether the Kafka clients use TLS.
func (c *KafkaConfig) TLSOn() bool {
	return c.TLS || c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != "" || c.TLSInsecureSkipVerify
}

// Conn validates the section and returns the one stream.Conn every Kafka
// client of the process uses: the brokers with the TLS and SASL settings,
// the CA, client certificate and password file read now.
func (c *KafkaConfig) Conn() (stream.Conn, error) {
	if err := c.Validate(); err != nil {
		return stream.Conn{}, err
	}
	var tlsCfg *tls.Config
	if c.TLSOn() {
		var err error
		if tlsCfg, err = stream.TLSConfig(c.TLSCA, c.TLSCert, c.TLSKey, c.TLSInsecureSkipVerify); err != nil {
			return stream.Conn{}, fmt.Errorf("--kafka-tls-*: %w", err)
		}
	}
	password := c.SASLPassword
	if c.SASLPasswordFile != "" {
		b, err := os.ReadFile(c.SASLPasswordFile)
		if err != nil {
			return stream.Conn{}, fmt.Errorf("--kafka-sasl-password-file: %w", err)
		}
		if password = strings.TrimRight(string(b), "\r\n"); password == "" {
			return stream.Conn{}, fmt.Errorf("--kafka-sasl-password-file %s is empty", c.SASLPasswordFile)
		}
	}
	mech, err := stream.NewSASL(c.SASLMechanism, c.SASLUsername, password)
	if err != nil {
		return stream.Conn{}, fmt.Errorf("--kafka-sasl-mechanism: %w", err)
	}
	return stream.NewConn(c.BrokerList(), tlsCfg, mech), nil
}

// HopWait is the fill wait of the dedupe and rater consumers.
func (c *KafkaConfig) HopWait() time.Duration {
	if c.HopFlushInterval <= 0 {
		return c.FlushInterval
	}
	return c.HopFlushInterval
}

// BrokerList is Brokers split.
func (c *KafkaConfig) BrokerList() []string { return splitList(c.Brokers) }

// RedisConfig is the Redis every role shares.
type RedisConfig struct {
	Addr string
	// SentinelAddrs and SentinelMaster, when set, name the Sentinels and
	// the master they monitor: the main Redis is then the primary they
	// name, followed across failovers (internal/redismain), and Addr is not
	// used.
	SentinelAddrs  string
	SentinelMaster string
}

// RegisterFlags registers --redis-addr and the Sentinel flags.
func (c *RedisConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "redis-addr", "127.0.0.1:16379", "Redis address: dedupe claims, rater running state, locks, leases, rate limits")
	fs.StringVar(&c.SentinelAddrs, "redis-sentinel-addrs", "", "comma list of Redis Sentinels; when set, the main Redis is the primary they name for --redis-sentinel-master (followed across failovers) and --redis-addr is not used")
	fs.StringVar(&c.SentinelMaster, "redis-sentinel-master", "", "the master name the Sentinels of --redis-sentinel-addrs monitor")
}

// Redismain is the configuration redismain.NewClient takes.
func (c *RedisConfig) Redismain() redismain.Config {
	return redismain.Config{Addr: c.Addr, SentinelAddrs: splitList(c.SentinelAddrs), Master: c.SentinelMaster}
}

// Client returns the client of the main Redis (redismain.NewClient): the
// one constructor of every role and every one-off command, so that each
// honours --redis-sentinel-addrs.
func (c *RedisConfig) Client() (*redis.Client, error) {
	return redismain.NewClient(c.Redismain())
}

// StateReplicas is how many replicas must have each running-state save
// before the rater counts it done, and how long a save waits for them: one
// with Sentinel (a failover promotes a replica; a save it lacks would be
// lost, and with it the guarantee that no record is charged twice), none
// with a single Redis (whose AOF with appendfsync always is the durability).
func (c *RedisConfig) StateReplicas() (int, time.Duration) {
	if len(splitList(c.SentinelAddrs)) == 0 {
		return 0, 0
	}
	return 1, 2 * time.Second
}

// ClickHouseConfig is the ClickHouse database.
type ClickHouseConfig struct {
	Addr     string
	Database string
	User     string
	Password string
	// Cluster names the ClickHouse cluster the tables live on (chdb.Config).
	Cluster string
}

// RegisterFlags registers the ClickHouse flags.
func (c *ClickHouseConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "clickhouse-addr", "127.0.0.1:19000", "ClickHouse native-protocol address")
	fs.StringVar(&c.Database, "clickhouse-database", "kakin", "ClickHouse database")
	fs.StringVar(&c.Cluster, "clickhouse-cluster", "", "ClickHouse cluster (remote_servers) to run on: migrate creates replicated tables and Distributed tables ON CLUSTER, inserts go through the Distributed tables synchronously; empty = one server")
	fs.StringVar(&c.User, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&c.Password, "clickhouse-password", "", "ClickHouse password")
}

// Chdb is the configuration chdb.Open and chdb.Migrate take.
func (c *ClickHouseConfig) Chdb() chdb.Config {
	return chdb.Config{Addr: c.Addr, Database: c.Database, User: c.User, Password: c.Password, Cluster: c.Cluster}
}

// TenantsConfig is the tenant settings every process reloads: the dedupe
// windows.
type TenantsConfig struct {
	// DedupeWindow is the window of a tenant without its own.
	DedupeWindow time.Duration
	Refresh      time.Duration
}

// RegisterFlags registers --dedupe-window and --tenant-refresh.
func (c *TenantsConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.DedupeWindow, "dedupe-window", 35*24*time.Hour, "default duplicate-detection window of a tenant without its own (kakin tenants set-dedupe-window): how long its event ids are remembered; ingest refuses events older than this")
	fs.DurationVar(&c.Refresh, "tenant-refresh", 30*time.Second, "how often tenant settings (dedupe windows) are reloaded from ClickHouse; a changed window applies within this")
}

// APIConfig is what every /v1 route shares: authentication, rate limits,
// pagination and idempotency keys.
type APIConfig struct {
	DevInsecure       bool
	TokenKeysFile     string
	TokenTTL          time.Duration
	RevocationRefresh time.Duration

	IngestEventsPerSec int
	IngestReqsPerSec   int
	AdminReqsPerMin    int
	// TokenPerAddrPerMin and TokenPerClientPerMin limit POST /oauth/token
	// before any secret is hashed.
	TokenPerAddrPerMin   int
	TokenPerClientPerMin int

	PageMaxSize    int
	IdempotencyTTL time.Duration
}

// RegisterFlags registers the API's flags.
func (c *APIConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.DevInsecure, "dev-insecure", false, "DEVELOPMENT ONLY: trust the Kakin-Tenant header instead of access tokens")
	fs.StringVar(&c.TokenKeysFile, "token-keys-file", ".run/token-keys", "access-token signing keys, one `kid base64url-secret` per line; the first signs, all verify")
	fs.DurationVar(&c.TokenTTL, "token-ttl", time.Hour, "lifetime of issued access tokens")
	fs.DurationVar(&c.RevocationRefresh, "revocation-refresh", 15*time.Second, "how often revoked clients are reloaded (a revoked client's tokens stop within this)")
	fs.IntVar(&c.IngestEventsPerSec, "rate-ingest-events", 100000, "default events per second per client on POST /v1/usage")
	fs.IntVar(&c.IngestReqsPerSec, "rate-ingest-requests", 500, "default ingest requests per second per client")
	fs.IntVar(&c.AdminReqsPerMin, "rate-admin-requests", 1200, "default admin API requests per minute per client")
	fs.IntVar(&c.TokenPerAddrPerMin, "rate-token-per-address", 60, "POST /oauth/token requests per minute per remote address (the connection's peer, an IPv6 address by its /64; X-Forwarded-For is not trusted), checked before the client secret is hashed; 429 above")
	fs.IntVar(&c.TokenPerClientPerMin, "rate-token-per-client", 60, "POST /oauth/token requests per minute per client id attempted (known or not), checked before the client secret is hashed; 429 above")
	fs.IntVar(&c.PageMaxSize, "page-max-size", 1000, "largest pageSize a list or search accepts (default page size is 10)")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", 24*time.Hour, "how long an Idempotency-Key's answer is remembered")
}

// JobsConfig is the job runner of a process (usage imports, re-rates).
type JobsConfig struct {
	Lease   time.Duration
	Workers int
}

// RegisterFlags registers --job-lease and --job-workers.
func (c *JobsConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Lease, "job-lease", 15*time.Second, "lease of a running job, renewed every third of it; a job of a crashed process is resumed elsewhere after about this long")
	fs.IntVar(&c.Workers, "job-workers", 2, "jobs (usage imports) one process runs at once")
}

// CatalogConfig is the catalogue replica of a process.
type CatalogConfig struct {
	PollInterval time.Duration
}

// RegisterFlags registers --catalog-poll-interval.
func (c *CatalogConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.PollInterval, "catalog-poll-interval", time.Second, "how often each process polls ClickHouse for catalogue changes (a change reaches every process within about this)")
}

// IngestConfig is the ingest role: request limits and usage imports.
type IngestConfig struct {
	MaxBodyBytes int64
	MaxRecords   int
	// MaxFutureSkew is how far in the future an event time may be; dedupe
	// keeps claims and the catalogue dates changes by the same rule.
	MaxFutureSkew  time.Duration
	ImportDir      string
	MaxImportBytes int64
}

// RegisterFlags registers the ingest role's flags.
func (c *IngestConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", ingest.DefaultLimits.MaxBodyBytes, "largest accepted ingest request body, in bytes (413 above)")
	fs.IntVar(&c.MaxRecords, "max-records", ingest.DefaultLimits.MaxRecords, "most records in one ingest request (413 above)")
	fs.DurationVar(&c.MaxFutureSkew, "max-future-skew", ingest.DefaultLimits.MaxFutureSkew, "how far in the future an event time may be")
	fs.StringVar(&c.ImportDir, "import-dir", "", "directory usage imports are spooled to until their job ends (empty: kakin-imports in the system temp dir; kakin dev: <data-dir>/imports); every process of the ingest role must see the same one")
	fs.Int64Var(&c.MaxImportBytes, "max-import-bytes", 512<<20, "largest accepted usage import file, in bytes (413 above)")
}

// Validate has nothing to refuse yet: every value the flags take is one
// the role runs with.
func (c *IngestConfig) Validate() error { return nil }

// SpoolDir is the directory imports are spooled to.
func (c *IngestConfig) SpoolDir() string {
	if c.ImportDir != "" {
		return c.ImportDir
	}
	return filepath.Join(os.TempDir(), "kakin-imports")
}

// DedupeConfig is the dedupe role: where its claims live.
type DedupeConfig struct {
	// RedisCluster are the seed nodes of a Redis Cluster for the claims;
	// empty: the claims live in the shared Redis.
	RedisCluster string
}

// RegisterFlags registers --dedupe-redis-cluster.
func (c *DedupeConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.RedisCluster, "dedupe-redis-cluster", "", "comma list of seed nodes of a Redis Cluster that holds the dedupe claims instead of --redis-addr, spread over its masters (one Redis core caps the claims at ~190,000-270,000 checks/s)")
}

// Validate has nothing to refuse yet: an empty list means the shared Redis.
func (c *DedupeConfig) Validate() error { return nil }

// RaterConfig is the rater role: the price list, running state and
// re-rates.
type RaterConfig struct {
	PriceList  string
	StateTTL   time.Duration
	RerateWait time.Duration
}

// RegisterFlags registers the rater role's flags.
func (c *RaterConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.PriceList, "price-list", "deploy/demo/pricelist.json", "per-unit price list file for tenants without a price plan in the catalogue store")
	fs.DurationVar(&c.StateTTL, "rater-state-ttl", 100*24*time.Hour, "how long the rater keeps a charge's running period state after its last change; must outlast the dedupe window plus a billing period")
	fs.DurationVar(&c.RerateWait, "rerate-wait", 2*time.Minute, "how long the rater waits for the aggregator to store every record before a re-rate request (longer: the batch fails and is retried); the rater's deadline per batch is this plus 30s")
}

// Validate refuses a re-rate wait that is not positive.
func (c *RaterConfig) Validate() error {
	if c.RerateWait <= 0 {
		return fmt.Errorf("--rerate-wait must be positive, got %v", c.RerateWait)
	}
	return nil
}

// AdminConfig is the admin role: the master keys of customers' personal
// fields, and where usage report files are kept.
type AdminConfig struct {
	MasterKeyFile string
	ReportDir     string
	// BillingWatermarkTimeout bounds how long a billing run or close waits
	// for the pipeline's stages to commit what their topics held when it
	// started.
	BillingWatermarkTimeout time.Duration
}

// RegisterFlags registers --master-key-file, --report-dir and
// --billing-watermark-timeout.
func (c *AdminConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.BillingWatermarkTimeout, "billing-watermark-timeout", 10*time.Minute, "how long a billing run or close waits for the dedupe, rater and aggregator consumer groups to commit the end offsets of their topics pinned at its start before it fails naming the group and partition behind")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", ".run/master-key", "master keys that wrap each tenant's data key for customers' personal fields, one `kid base64url-secret` (32 bytes) per line; the first wraps, all unwrap")
	fs.StringVar(&c.ReportDir, "report-dir", "", "directory usage report files are kept in until the report is deleted (empty: kakin-reports in the system temp dir); every process of the admin role must see the same one")
}

// ReportsDir is the directory report files are kept in.
func (c *AdminConfig) ReportsDir() string {
	if c.ReportDir != "" {
		return c.ReportDir
	}
	return filepath.Join(os.TempDir(), "kakin-reports")
}

// Validate refuses an empty master key file name and a watermark timeout
// that is not positive.
func (c *AdminConfig) Validate() error {
	if c.BillingWatermarkTimeout <= 0 {
		return fmt.Errorf("--billing-watermark-timeout must be positive, got %v", c.BillingWatermarkTimeout)
	}
	if c.MasterKeyFile == "" {
		return errors.New("--master-key-file is empty: customers' personal fields need a master key file")
	}
	return nil
}

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
