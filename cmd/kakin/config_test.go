package main

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/app"
)

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("KAKIN_BATCH_SIZE", "77")
	t.Setenv("KAFKA_BROKERS", "k1:9092,k2:9092")
	t.Setenv("KAKIN_REDIS_ADDR", "r:1")
	var cfg app.Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := app.ParseFlags(fs, []string{"--redis-addr=r:2"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.BatchSize != 77 || strings.Join(cfg.Kafka.BrokerList(), "|") != "k1:9092|k2:9092" || cfg.Redis.Addr != "r:2" {
		t.Errorf("config %+v: want env applied and flags winning", cfg)
	}
	t.Setenv("KAKIN_BATCH_SIZE", "many")
	if err := app.ParseFlags(flag.NewFlagSet("t", flag.ContinueOnError), nil); err != nil {
		t.Fatal("a flagset without the flag must ignore the variable")
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	new(app.Config).RegisterFlags(fs)
	if err := app.ParseFlags(fs, nil); err == nil || !strings.Contains(err.Error(), "KAKIN_BATCH_SIZE") {
		t.Errorf("bad environment value: err %v, want one naming KAKIN_BATCH_SIZE", err)
	}
}

// TestREADMEDocumentsEveryFlag keeps the README's configuration table true.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("kakin", flag.ContinueOnError)
	new(app.Config).RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(readme), "`--"+f.Name+"` | `"+app.EnvName(f.Name)+"`") {
			t.Errorf("README.md does not document --%s / %s (regenerate with `kakin config`)", f.Name, app.EnvName(f.Name))
		}
	})
}

func TestParseWindow(t *testing.T) {
	for in, want := range map[string]time.Duration{"40d": 40 * 24 * time.Hour, "0": 0, "0d": 0, "960h": 960 * time.Hour, "36h30m": 36*time.Hour + 30*time.Minute} {
		if got, err := parseWindow(in); err != nil || got != want {
			t.Errorf("parseWindow(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-3d", "1.5d", "forty"} {
		if _, err := parseWindow(bad); err == nil {
			t.Errorf("parseWindow(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{0: "default", 40 * 24 * time.Hour: "40d", 36 * time.Hour: "36h0m0s"} {
		if got := windowText(d); got != want {
			t.Errorf("windowText(%v) = %q, want %q", d, got, want)
		}
	}
}
