package app

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// EnvName is the environment variable of a flag: --kafka-brokers is
// KAKIN_KAFKA_BROKERS.
func EnvName(flagName string) string {
	return "KAKIN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ParseFlags applies the environment, then the command line: flags win.
// KAFKA_BROKERS is honoured for --kafka-brokers when KAKIN_KAFKA_BROKERS
// is not set.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(EnvName(f.Name))
		if !ok && f.Name == "kafka-brokers" {
			v, ok = os.LookupEnv("KAFKA_BROKERS")
		}
		if ok && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	return fs.Parse(args)
}

// FlagTable renders every flag of fs as a Markdown table row, for the
// README.
func FlagTable(fs *flag.FlagSet) string {
	var rows []string
	fs.VisitAll(func(f *flag.Flag) {
		rows = append(rows, fmt.Sprintf("| `--%s` | `%s` | `%s` | %s |", f.Name, EnvName(f.Name), f.DefValue, f.Usage))
	})
	sort.Strings(rows)
	return "| flag | environment | default | meaning |\n|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
}
