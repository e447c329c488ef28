package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/internal/auth"
)

const clientsUsage = `Usage:
  kakin clients create --tenant T --name N --scopes usage:write,usage:read [--ingest-events-per-second N] [--ingest-requests-per-second N] [--admin-requests-per-minute N]
  kakin clients list   --tenant T
  kakin clients revoke --tenant T CLIENT_ID

API clients get access tokens from POST /oauth/token (OAuth 2.0 client credentials).
create prints the client secret once; Kakin stores only a hash of it.
Scopes: usage:write usage:read catalog:read catalog:write customers:read customers:write billing:read billing:write admin
`

// runClients manages the API clients of a tenant.
func runClients(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, clientsUsage)
		if len(args) == 0 {
			return errors.New("missing subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var cfg app.Config
	fs := flag.NewFlagSet("kakin clients "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), clientsUsage); fs.PrintDefaults() }
	cfg.RegisterFlags(fs)
	tenantID := fs.String("tenant", "", "tenant id (required)")
	switch sub {
	case "create":
		name := fs.String("name", "", "client name, e.g. what runs with it (required)")
		scopes := fs.String("scopes", "", "comma list of scopes (required)")
		lim := limitFlags(fs)
		pos, err := parseFlagsAndArgs(fs, args)
		if err != nil {
			return ignoreHelp(err)
		}
		if len(pos) != 0 || *tenantID == "" || *name == "" || *scopes == "" {
			return errors.New("usage: kakin clients create --tenant T --name N --scopes usage:write,usage:read [limits]")
		}
		sc, err := auth.ParseScopes(*scopes)
		if err != nil {
			return err
		}
		_, store, closeStore, err := openStores(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		id, secret, err := store.CreateClient(ctx, *tenantID, *name, sc, *lim, cliActor())
		if err != nil {
			return err
		}
		fmt.Printf("client_id:     %s\nclient_secret: %s\n", id, secret)
		fmt.Fprintln(os.Stderr, "\nWARNING: this is the only time the client secret is shown. Kakin stores only a hash of it;\n"+
			"keep it in a secret manager now. A lost secret cannot be recovered: create a new client and revoke this one.")
		return nil
	case "list":
		pos, err := parseFlagsAndArgs(fs, args)
		if err != nil {
			return ignoreHelp(err)
		}
		if len(pos) != 0 || *tenantID == "" {
			return errors.New("usage: kakin clients list --tenant T")
		}
		registry, store, closeStore, err := openStores(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		if _, err := registry.GetTenant(ctx, *tenantID); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tSCOPES\tEVENTS/S\tREQUESTS/S\tADMIN/MIN\tSTATUS\tCREATED")
		after := ""
		for {
			page, err := store.ListClients(ctx, *tenantID, after, auth.MaxListClients)
			if err != nil {
				return err
			}
			for _, c := range page {
				status := "active"
				if c.Revoked {
					status = "revoked " + c.RevokedAt.Format("2006-01-02 15:04:05Z")
				}
				sc := make([]string, len(c.Scopes))
				for i, s := range c.Scopes {
					sc[i] = string(s)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, strings.Join(sc, ","),
					limitText(c.Limits.IngestEventsPerSecond), limitText(c.Limits.IngestRequestsPerSecond),
					limitText(c.Limits.AdminRequestsPerMinute), status, c.CreatedAt.Format("2006-01-02 15:04:05Z"))
			}
			if len(page) < auth.MaxListClients {
				break
			}
			after = page[len(page)-1].ID
		}
		return tw.Flush()
	case "revoke":
		pos, err := parseFlagsAndArgs(fs, args)
		if err != nil {
			return ignoreHelp(err)
		}
		if len(pos) != 1 || *tenantID == "" {
			return errors.New("usage: kakin clients revoke --tenant T CLIENT_ID")
		}
		_, store, closeStore, err := openStores(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		c, err := store.RevokeClient(ctx, *tenantID, pos[0], cliActor())
		if err != nil {
			return err
		}
		fmt.Printf("revoked client %s of tenant %s at %s: no new tokens from now; its existing tokens are refused\n"+
			"by every server within one --revocation-refresh (at most a minute).\n", c.ID, c.Tenant, c.RevokedAt.Format("2006-01-02 15:04:05Z"))
		return nil
	default:
		fmt.Fprint(os.Stderr, clientsUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
}
