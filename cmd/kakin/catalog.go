package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/chdb"
	"go.yaml.in/yaml/v3"
)

const catalogUsage = `Usage:
  kakin catalog export --tenant T [-o FILE] [--format yaml|json] [--contracts]
  kakin catalog apply  --tenant T -f FILE [--yes]

export writes the tenant's masters (with --contracts also its basic, service
and discount contracts) as a catalogue file. apply compares a catalogue file
with the tenant's current state and prints, per entity, create, update (with
the changed lines) or unchanged; with --yes it then stores the whole file in
one transaction (validated together: all of it or nothing). Applying the same
file twice changes nothing. Entities the file does not list are left alone.
Both talk to ClickHouse and Redis directly (like kakin tenants); the file's
format is catalog/catalogue.schema.json.
`

// runCatalog exports and applies catalogue files.
func runCatalog(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, catalogUsage)
		if len(args) == 0 {
			return errors.New("missing subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var cfg app.Config
	fs := flag.NewFlagSet("kakin catalog "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), catalogUsage); fs.PrintDefaults() }
	cfg.RegisterFlags(fs)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	switch sub {
	case "export":
		out := fs.String("o", "-", "output file (- for standard output)")
		format := fs.String("format", "yaml", "yaml or json")
		contracts := fs.Bool("contracts", false, "include basic, service and discount contracts")
		if _, err := parseFlagsAndArgs(fs, args); err != nil {
			return ignoreHelp(err)
		}
		if *tenantID == "" {
			return errors.New("usage: kakin catalog export --tenant T [-o FILE]")
		}
		cs, closeAll, err := openCatalog(ctx, cfg, *tenantID)
		if err != nil {
			return err
		}
		defer closeAll()
		b, err := encodeCatalogue(catalogstore.ExportCatalogue(cs.Replica(), *tenantID, *contracts), *format)
		if err != nil {
			return err
		}
		if *out == "-" {
			_, err = os.Stdout.Write(b)
			return err
		}
		return os.WriteFile(*out, b, 0o644)
	case "apply":
		file := fs.String("f", "", "catalogue file, YAML or JSON (required; - for standard input)")
		yes := fs.Bool("yes", false, "apply the changes (without it, only show them)")
		if _, err := parseFlagsAndArgs(fs, args); err != nil {
			return ignoreHelp(err)
		}
		if *tenantID == "" || *file == "" {
			return errors.New("usage: kakin catalog apply --tenant T -f FILE [--yes]")
		}
		c, err := readCatalogueFile(*file)
		if err != nil {
			return err
		}
		cs, closeAll, err := openCatalog(ctx, cfg, *tenantID)
		if err != nil {
			return err
		}
		defer closeAll()
		_, err = applyCatalogue(ctx, cs, *tenantID, cliActor(), c, *yes, os.Stdout)
		return err
	default:
		fmt.Fprint(os.Stderr, catalogUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
}

func readCatalogueFile(path string) (*catalog.Catalogue, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	c, err := catalog.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// openCatalog opens a store on tenant's state (a replica of that tenant
// only, loaded once). Customers' personal fields are not needed for
// catalogue files, so no master key is loaded.
func openCatalog(ctx context.Context, cfg app.Config, tenantID string) (*catalogstore.Store, func(), error) {
	conn, err := chdb.Open(ctx, cfg.ClickHouse.Chdb())
	if err != nil {
		return nil, nil, err
	}
	rdb, err := cfg.Redis.Client()
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	replica := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{Tenants: []string{tenantID}, WithoutPII: true, Log: quiet})
	closeAll := func() { rdb.Close(); conn.Close() }
	if err := replica.Load(ctx); err != nil {
		closeAll()
		return nil, nil, err
	}
	return catalogstore.NewStore(conn, rdb, replica, nil, catalogstore.StoreOptions{Log: quiet}), closeAll, nil
}

// applyCatalogue prints what applying c changes and, with yes, applies it.
func applyCatalogue(ctx context.Context, cs *catalogstore.Store, tenantID, actor string, c *catalog.Catalogue, yes bool, out io.Writer) ([]catalogstore.Change, error) {
	if c.Tenant != "" && c.Tenant != tenantID {
		return nil, fmt.Errorf("the catalogue file is for tenant %q, not %q", c.Tenant, tenantID)
	}
	if _, err := cs.Replica().Sync(ctx, tenantID); err != nil {
		return nil, err
	}
	diffs, err := catalogstore.PlanCatalogue(cs.Replica(), tenantID, c)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, d := range diffs {
		counts[d.Op]++
		fmt.Fprintf(out, "%-9s %s %s\n", d.Op, d.Kind, d.ID)
		if d.Op == "update" {
			for _, l := range lineDiff(pretty(d.Before), pretty(d.After)) {
				fmt.Fprintln(out, "          "+l)
			}
		}
	}
	fmt.Fprintf(out, "%d to create, %d to update, %d unchanged\n", counts["create"], counts["update"], counts["unchanged"])
	if !yes {
		if counts["create"]+counts["update"] > 0 {
			fmt.Fprintln(out, "nothing applied: run again with --yes to apply")
		}
		return nil, nil
	}
	changes, err := cs.ApplyCatalogue(ctx, tenantID, actor, c)
	if err != nil {
		var ve *catalogstore.ValidationError
		if errors.As(err, &ve) {
			var lines []string
			for _, f := range ve.Errors {
				lines = append(lines, fmt.Sprintf("  %s %s: %s: %s", f.Kind, f.ID, f.Field, f.Reason))
			}
			return nil, fmt.Errorf("the catalogue is not valid; nothing was applied:\n%s", strings.Join(lines, "\n"))
		}
		return nil, err
	}
	fmt.Fprintf(out, "applied: %d revisions written\n", len(changes))
	return changes, nil
}

func pretty(doc string) []string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(doc), "", "  "); err != nil {
		return []string{doc}
	}
	return strings.Split(b.String(), "\n")
}

// lineDiff is a minimal line diff (longest common subsequence) of two short
// documents: changed lines with - and +, a little context around them.
func lineDiff(a, b []string) []string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var all []line
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			all = append(all, line{' ', a[i]})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			all = append(all, line{'-', a[i]})
			i++
		default:
			all = append(all, line{'+', b[j]})
			j++
		}
	}
	var out []string
	for k, l := range all {
		near := false
		for d := -1; d <= 1; d++ {
			if k+d >= 0 && k+d < len(all) && all[k+d].op != ' ' {
				near = true
			}
		}
		if near {
			out = append(out, string(l.op)+" "+l.text)
		}
	}
	return out
}

// encodeCatalogue renders a catalogue file as YAML or JSON.
func encodeCatalogue(c *catalog.Catalogue, format string) ([]byte, error) {
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	switch format {
	case "json":
		return append(js, '\n'), nil
	case "yaml":
		var node yaml.Node
		if err := yaml.Unmarshal(js, &node); err != nil {
			return nil, err
		}
		blockStyle(&node)
		var b bytes.Buffer
		b.WriteString("# Catalogue of tenant " + c.Tenant + ", exported by kakin catalog export.\n" +
			"# Apply with: kakin catalog apply --tenant " + c.Tenant + " -f FILE\n")
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(&node); err != nil {
			return nil, err
		}
		return b.Bytes(), enc.Close()
	}
	return nil, fmt.Errorf("unknown format %q (yaml or json)", format)
}

// blockStyle turns the flow style of parsed JSON into YAML block style.
func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}
