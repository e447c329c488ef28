package app

import (
	"flag"
	"strings"
	"testing"
)

// Validate checks the sections of the roles a process runs: a setting only
// another role reads does not stop it.
func TestConfigValidate(t *testing.T) {
	defaults := func() Config {
		var c Config
		c.RegisterFlags(flag.NewFlagSet("t", flag.ContinueOnError))
		return c
	}
	tests := []struct {
		name    string
		change  func(c *Config)
		wantErr string // "" for none
	}{
		{name: "defaults", change: func(*Config) {}},
		{name: "unknown role", change: func(c *Config) { c.Roles = "ingest,billing" }, wantErr: `unknown role "billing"`},
		{name: "no brokers", change: func(c *Config) { c.Kafka.Brokers = " , " }, wantErr: "no kafka brokers"},
		{name: "rater without a re-rate wait", change: func(c *Config) { c.Rater.RerateWait = 0 }, wantErr: "--rerate-wait must be positive"},
		{name: "re-rate wait without the rater", change: func(c *Config) { c.Roles = "ingest,admin"; c.Rater.RerateWait = 0 }},
		{name: "certificate without a key", change: func(c *Config) { c.HTTP.TLSCert = "cert.pem" }, wantErr: "--tls-cert and --tls-key"},
		{name: "admin without a master key file", change: func(c *Config) { c.Admin.MasterKeyFile = "" }, wantErr: "--master-key-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults()
			tt.change(&c)
			err := c.Validate()
			ok := err == nil
			if tt.wantErr != "" {
				ok = err != nil && strings.Contains(err.Error(), tt.wantErr)
			}
			if !ok {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
