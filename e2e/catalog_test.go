package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/apitest"
)

// tenantAPI is a client of one process acting as one tenant (--dev-insecure:
// the Kakin-Tenant header names it), validated against the OpenAPI document.
type tenantAPI struct {
	*api
	tenant string
}

func (c tenantAPI) call(method, path, body string, headers ...string) reply {
	c.t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return c.do(method, path, "", b, append([]string{"Kakin-Tenant", c.tenant, "Authorization", "Bearer dev"}, headers...)...)
}

// output runs a kakin command and returns its output; it fails the test if
// the command fails.
func (e *env) output(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(shared.bin, args...)
	cmd.Env = e.environ()
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kakin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestCatalogAcrossProcesses runs two admin processes on one ClickHouse and
// Redis: a change written through one is served by the other within two
// seconds, two writers with the same revision get one 200 and one 409, and a
// restart of every process loses nothing. It also applies and exports the
// demo catalogue with the CLI.
func TestCatalogAcrossProcesses(t *testing.T) {
	e := newEnv(t, e2ePrices)
	v := apitest.NewValidator(t)
	p1, p2 := e.start("admin-1", "admin"), e.start("admin-2", "admin")
	a := tenantAPI{&api{t: t, base: p1.url, http: v.Client()}, "demo"}
	b := tenantAPI{&api{t: t, base: p2.url, http: v.Client()}, "demo"}

	// The catalogue from a file, with the CLI: a dry run first, then --yes,
	// then again (nothing to do), and an export that applies unchanged.
	dry := e.output(t, "catalog", "apply", "--tenant", "demo", "-f", "deploy/demo/catalogue.yaml")
	if !strings.Contains(dry, "create    plan cloud-standard") || !strings.Contains(dry, "16 to create, 0 to update, 0 unchanged") ||
		!strings.Contains(dry, "nothing applied") {
		t.Fatalf("dry run:\n%s", dry)
	}
	if r := a.call("GET", "/v1/plans/count", ""); !strings.Contains(string(r.body), `"count":0`) {
		t.Fatalf("a dry run stored something: %s", r.body)
	}
	if out := e.output(t, "catalog", "apply", "--tenant", "demo", "-f", "deploy/demo/catalogue.yaml", "--yes"); !strings.Contains(out, "applied: 16 revisions written") {
		t.Fatalf("apply:\n%s", out)
	}
	if out := e.output(t, "catalog", "apply", "--tenant", "demo", "-f", "deploy/demo/catalogue.yaml", "--yes"); !strings.Contains(out, "0 to create, 0 to update, 16 unchanged") {
		t.Fatalf("apply again:\n%s", out)
	}
	exported := filepath.Join(e.dir, "export.yaml")
	e.output(t, "catalog", "export", "--tenant", "demo", "-o", exported)
	if out := e.output(t, "catalog", "apply", "--tenant", "demo", "-f", exported); !strings.Contains(out, "0 to create, 0 to update, 16 unchanged") {
		b, _ := os.ReadFile(exported)
		t.Fatalf("the export does not apply unchanged:\n%s\n--- export:\n%s", out, b)
	}
	// A changed price shows as an update with the changed line.
	changed := filepath.Join(e.dir, "changed.yaml")
	src, _ := os.ReadFile(filepath.Join("..", "deploy", "demo", "catalogue.yaml"))
	if err := os.WriteFile(changed, []byte(strings.Replace(string(src), "unit_price: 1.2", "unit_price: 1.25", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.output(t, "catalog", "apply", "--tenant", "demo", "-f", changed); !strings.Contains(out, "update    rate_table storage-per-unit") ||
		!regexp.MustCompile(`(?m)^ +- +"unit_price": "1.2"\n +\+ +"unit_price": "1.25"$`).MatchString(out) || !strings.Contains(out, "1 to update") {
		t.Fatalf("diff of a price change:\n%s", out)
	}

	// Both processes serve the catalogue the CLI wrote.
	waitFor(t, 5*time.Second, "process 2 to see the applied catalogue", func() (bool, string) {
		r := b.call("GET", "/v1/plans/count", "")
		return strings.Contains(string(r.body), `"count":2`), string(r.body)
	})

	// A change through process 1 is served by process 2 within 2 seconds.
	start := time.Now()
	if r := a.call("POST", "/v1/customers", `{"id":"c1","personal":{"email":"c1@shop.example"}}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var seen time.Duration
	for {
		if r := b.call("GET", "/v1/customers?email=c1%40shop.example", ""); strings.Contains(string(r.body), `"id":"c1"`) {
			seen = time.Since(start)
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("process 2 did not serve the new customer within 2 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("a change written through process 1 was served by process 2 after %s", seen)

	// Two writers, one revision: one 200, one 409, whichever wins.
	for round := 1; round <= 3; round++ {
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, c := range []tenantAPI{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"id":"c1","attributes":{"w":"%d-%d"},"personal":{"email":"c1@shop.example"}}`, round, i)
				statuses[i] = c.call("PUT", "/v1/customers/c1", body, "If-Match", fmt.Sprintf(`"%d"`, round)).status
			}()
		}
		wg.Wait()
		slices.Sort(statuses)
		if !slices.Equal(statuses, []int{200, 409}) {
			t.Fatalf("round %d: %v, want one 200 and one 409", round, statuses)
		}
	}

	// Restart everything: nothing is lost.
	p1.stop(t)
	p2.stop(t)
	p3 := e.start("admin-3", "admin")
	c := tenantAPI{&api{t: t, base: p3.url, http: v.Client()}, "demo"}
	r := c.call("GET", "/v1/customers/c1/revisions", "")
	var revs struct {
		Items []struct {
			Revision uint64
			Personal struct{ Email string }
		}
	}
	if err := json.Unmarshal(r.body, &revs); err != nil || len(revs.Items) != 4 || revs.Items[3].Revision != 4 || revs.Items[3].Personal.Email != "c1@shop.example" {
		t.Fatalf("history after restart: %d %s", r.status, r.body)
	}
	if r := c.call("GET", "/v1/rate-tables/api-graduated", ""); r.status != 200 || r.header.Get("ETag") != `"1"` {
		t.Fatalf("catalogue after restart: %d %s", r.status, r.body)
	}
	// And the finance views in ClickHouse show the customer, without its
	// personal fields.
	var n uint64
	if err := e.ch.QueryRow(context.Background(), `SELECT count() FROM catalog_customers WHERE tenant = 'demo' AND customer = 'c1'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("catalog_customers: %d %v", n, err)
	}
}
