package catalogstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/internal/vault"
	"github.com/shopspring/decimal"
)

func demoCatalogue(t *testing.T) *catalog.Catalogue {
	t.Helper()
	f, err := os.Open("../../deploy/demo/catalogue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := catalog.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// putMasters stores every master of c in one transaction.
func putMasters(t *testing.T, s *Store, tenant string, c *catalog.Catalogue) []Change {
	t.Helper()
	changes, err := s.Transact(context.Background(), tenant, "test", func(tx *Tx) error {
		for i := range c.Services {
			tx.Put(KindService, &c.Services[i])
		}
		for i := range c.Plans {
			tx.Put(KindPlan, &c.Plans[i])
		}
		for i := range c.Fees {
			tx.Put(KindFee, &c.Fees[i])
		}
		for i := range c.Elements {
			tx.Put(KindElement, &c.Elements[i])
		}
		for i := range c.RateTables {
			tx.Put(KindRateTable, &c.RateTables[i])
		}
		for i := range c.DiscountTables {
			tx.Put(KindDiscountTable, &c.DiscountTables[i])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return changes
}

func element(code string) *catalog.Element {
	return &catalog.Element{Code: code, Name: code, Versions: []catalog.ElementVersion{{
		Validity: catalog.Validity{ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, Unit: "h", Aggregation: catalog.AggSum}}}
}

func TestMastersLifecycle(t *testing.T) {
	e := newEnv(t)
	p := e.start()
	ctx := context.Background()
	ten := tenantFor(t, "a")
	changes := putMasters(t, p.store, ten, demoCatalogue(t))
	if len(changes) != 16 {
		t.Fatalf("%d changes, want 16 masters created", len(changes))
	}
	for _, c := range changes {
		if c.Op != "created" || c.Entity.Revision != 1 {
			t.Errorf("%s %s: %s revision %d", c.Entity.Kind, c.Entity.ID, c.Op, c.Entity.Revision)
		}
	}
	// Applying the same masters again changes nothing.
	if again := putMasters(t, p.store, ten, demoCatalogue(t)); len(again) != 0 {
		t.Errorf("re-applying the same catalogue made %d changes", len(again))
	}

	plan, err := p.store.Get(ctx, ten, KindPlan, "cloud-standard")
	if err != nil || plan.Revision != 1 || plan.ChangedBy != "test" {
		t.Fatalf("get: %+v %v", plan, err)
	}
	upd := *plan.Value.(*catalog.Plan)
	upd.Name = "Cloud standard, renamed"
	got, err := p.store.Update(ctx, ten, "alice", KindPlan, "cloud-standard", rev(1), &upd)
	if err != nil || got.Revision != 2 || got.ChangedBy != "alice" || got.Value.(*catalog.Plan).Name != upd.Name {
		t.Fatalf("update: %+v %v", got, err)
	}
	// A writer that read revision 1 is refused.
	var ce *ConflictError
	if _, err := p.store.Update(ctx, ten, "bob", KindPlan, "cloud-standard", rev(1), &upd); !errors.As(err, &ce) || ce.Current != 2 {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := p.store.Create(ctx, ten, "bob", KindPlan, &upd); !errors.Is(err, ErrExists) {
		t.Fatalf("create existing: %v", err)
	}
	if _, err := p.store.Update(ctx, ten, "bob", KindPlan, "nope", rev(1), &catalog.Plan{Code: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	// Deleting a rate table a fee uses is refused, naming the fee.
	var re *ReferencedError
	_, err = p.store.Delete(ctx, ten, "bob", KindRateTable, "api-graduated", rev(1))
	if !errors.As(err, &re) || re.By[0].Kind != KindFee || re.By[0].ID != "api-calls" || !strings.Contains(re.By[0].Field, "rates[0]") {
		t.Fatalf("delete referenced rate table: %v", err)
	}
	// An unreferenced master: delete (tombstone), history, create again.
	if _, err := p.store.Create(ctx, ten, "bob", KindElement, element("gpu_hours")); err != nil {
		t.Fatal(err)
	}
	del, err := p.store.Delete(ctx, ten, "bob", KindElement, "gpu_hours", rev(1))
	if err != nil || !del.Deleted || del.Revision != 2 {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if _, err := p.store.Get(ctx, ten, KindElement, "gpu_hours"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if _, err := p.store.Delete(ctx, ten, "bob", KindElement, "gpu_hours", rev(2)); !errors.As(err, &ce) {
		t.Fatalf("delete of a deleted entity with its tombstone revision: %v", err)
	}
	again, err := p.store.Create(ctx, ten, "carol", KindElement, element("gpu_hours"))
	if err != nil || again.Revision != 3 {
		t.Fatalf("create again: %+v %v", again, err)
	}
	hist, err := p.store.History(ctx, ten, KindElement, "gpu_hours", 0, 10)
	if err != nil || len(hist) != 3 || hist[0].Deleted || !hist[1].Deleted || hist[2].Deleted ||
		hist[1].ChangedBy != "bob" || hist[1].Value.(*catalog.Element).Versions[0].Unit != "h" {
		t.Fatalf("history: %+v %v", hist, err)
	}
	// Invalid documents name the field.
	bad := element("bad")
	bad.Versions[0].Aggregation = "median"
	var ve *ValidationError
	if _, err := p.store.Create(ctx, ten, "bob", KindElement, bad); !errors.As(err, &ve) || ve.Errors[0].Field != "versions[0].aggregation" {
		t.Fatalf("invalid element: %v", err)
	}
	// A fee referencing an unknown element.
	fee := &catalog.Fee{Code: "f", Name: "f", Versions: []catalog.FeeVersion{{Validity: catalog.Validity{ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		Kind: catalog.FeeMetered, Element: "nope", Rates: []catalog.RateChoice{{RateTable: "api-graduated"}}}}}
	if _, err := p.store.Create(ctx, ten, "bob", KindFee, fee); !errors.As(err, &ve) || ve.Errors[0].Field != "versions[0].element" ||
		!strings.Contains(ve.Errors[0].Reason, "unknown element") {
		t.Fatalf("fee with unknown element: %v", err)
	}
}

func TestStaleUpdateWithTwoWriters(t *testing.T) {
	e := newEnv(t)
	// Two processes, each with its own replica and store, like two admin
	// processes behind a load balancer.
	a, b := e.start(), e.start()
	ctx := context.Background()
	ten := tenantFor(t, "race")
	if _, err := a.store.Create(ctx, ten, "a", KindElement, element("e")); err != nil {
		t.Fatal(err)
	}
	for round := uint64(1); round <= 8; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []*process{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				el := element("e")
				el.Name = fmt.Sprintf("round %d writer %d", round, i)
				_, errs[i] = p.store.Update(ctx, ten, "w", KindElement, "e", rev(round), el)
			}()
		}
		wg.Wait()
		ok, conflicts := 0, 0
		for _, err := range errs {
			var ce *ConflictError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ce) && ce.Expected == round && ce.Current == round+1:
				conflicts++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 || conflicts != 1 {
			hist, _ := a.store.History(ctx, ten, KindElement, "e", 0, 100)
			for _, h := range hist {
				t.Logf("rev %d seq %d by %v", h.Revision, h.Seq, h.Value.(*catalog.Element).Name)
			}
			t.Fatalf("round %d: %d succeeded, %d conflicts; want exactly one of each", round, ok, conflicts)
		}
	}
	// Nothing was lost or doubled: nine revisions, in order, gap-free.
	hist, err := a.store.History(ctx, ten, KindElement, "e", 0, 100)
	if err != nil || len(hist) != 9 {
		t.Fatalf("history: %d revisions, %v", len(hist), err)
	}
	for i, h := range hist {
		if h.Revision != uint64(i+1) {
			t.Errorf("revision %d at position %d", h.Revision, i)
		}
		if i > 0 && h.Seq != hist[i-1].Seq+1 {
			t.Errorf("seq %d after %d: commits are not consecutive", h.Seq, hist[i-1].Seq)
		}
	}
}

func TestAsOfReads(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	p := e.start(func(o *StoreOptions) {
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	})
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	ctx := context.Background()
	ten := tenantFor(t, "asof")
	t0 := clock
	if _, err := p.store.Create(ctx, ten, "a", KindElement, element("e")); err != nil {
		t.Fatal(err)
	}
	advance(10 * time.Second)
	el := element("e")
	el.Name = "renamed"
	if _, err := p.store.Update(ctx, ten, "a", KindElement, "e", rev(1), el); err != nil {
		t.Fatal(err)
	}
	advance(10 * time.Second)
	if _, err := p.store.Delete(ctx, ten, "a", KindElement, "e", rev(2)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at       time.Duration
		revision uint64
		name     string
		deleted  bool
		missing  bool
	}{
		{at: -time.Second, missing: true},
		{at: 0, revision: 1, name: "e"},
		{at: 9 * time.Second, revision: 1, name: "e"},
		{at: 10 * time.Second, revision: 2, name: "renamed"},
		{at: 15 * time.Second, revision: 2, name: "renamed"},
		{at: 25 * time.Second, revision: 3, deleted: true, name: "renamed"},
	}
	for _, tt := range tests {
		got, err := p.store.AsOf(ctx, ten, KindElement, "e", t0.Add(tt.at))
		if tt.missing {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("as of %s: %+v %v, want not found", tt.at, got, err)
			}
			continue
		}
		if err != nil || got.Revision != tt.revision || got.Deleted != tt.deleted || got.Value.(*catalog.Element).Name != tt.name {
			t.Errorf("as of %s: revision %d deleted %v %+v %v; want revision %d", tt.at, got.Revision, got.Deleted, got.Value, err, tt.revision)
		}
	}
}

// contractFixture stores the demo masters, a customer, a JPY basic contract
// and a USD plan.
func contractFixture(t *testing.T, p *process, ten string) {
	t.Helper()
	ctx := context.Background()
	c := demoCatalogue(t)
	usd := c.Plans[1] // backup-flat, repriced in USD
	usd.Code, usd.Versions = "backup-usd", append([]catalog.PlanVersion(nil), usd.Versions...)
	usd.Versions[0].Currency = "USD"
	c.Plans = append(c.Plans, usd)
	putMasters(t, p.store, ten, c)
	for _, id := range []string{"c1", "c2"} {
		if _, err := p.store.Create(ctx, ten, "t", KindCustomer, &catalog.Customer{ID: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.store.Create(ctx, ten, "t", KindBasicContract, basic("b-"+id, id)); err != nil {
			t.Fatal(err)
		}
	}
}

func basic(id, customer string) *catalog.BasicContract {
	return &catalog.BasicContract{ID: id, Customer: customer, DateRange: catalog.DateRange{Start: day("2026-01-01")},
		Currency: "JPY", TimeZone: "Asia/Tokyo", Rounding: "half_up"}
}

func day(s string) catalog.Date {
	d, err := catalog.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func serviceContract(id, customer, service, parent string, plans ...string) *catalog.ServiceContract {
	sc := &catalog.ServiceContract{ID: id, Customer: customer, Basic: "b-" + customer, Service: service, Parent: parent,
		DateRange: catalog.DateRange{Start: day("2026-02-01")}}
	for _, p := range plans {
		sc.Plans = append(sc.Plans, catalog.PricePlanTerm{Plan: p, DateRange: catalog.DateRange{Start: day("2026-02-01")}})
	}
	return sc
}

func TestContractReferences(t *testing.T) {
	e := newEnv(t)
	// The business clock stands before every contract's start, so none has
	// taken effect and deleting one is a question of references only
	// (TestDeleteContractInEffect in admin/catalogapi covers the rest).
	beforeContracts := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	p := e.start(func(o *StoreOptions) { o.Now = func() time.Time { return beforeContracts } })
	ctx := context.Background()
	ten := tenantFor(t, "refs")
	contractFixture(t, p, ten)

	fieldOf := func(err error) string {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return "not a validation error: " + errString(err)
		}
		var lines []string
		for _, f := range ve.Errors {
			lines = append(lines, f.Field+": "+f.Reason)
		}
		return "\n" + strings.Join(lines, "\n")
	}
	tests := []struct {
		name  string
		sc    *catalog.ServiceContract
		field string
	}{
		{"unknown plan", serviceContract("k1", "c1", "cloud", "", "nope"), "plans[0].plan: unknown plan"},
		{"unknown customer", serviceContract("k1", "zz", "cloud", "", "cloud-standard"), "customer: unknown customer"},
		{"unknown service", serviceContract("k1", "c1", "storage", "", "cloud-standard"), "service: unknown service"},
		{"currency mismatch", serviceContract("k1", "c1", "cloud-backup", "", "backup-usd"), "plans[0].plan: plan \"backup-usd\" is priced in USD but the basic contract bills in JPY"},
		{"plan not offered", serviceContract("k1", "c1", "cloud", "", "backup-flat"), "plans[0].plan: service \"cloud\" does not offer plan"},
		{"option without parent", serviceContract("k1", "c1", "cloud-backup", "", "backup-flat"), "parent: service \"cloud-backup\" is an option"},
		{"another customer's basic contract", func() *catalog.ServiceContract {
			sc := serviceContract("k1", "c1", "cloud", "", "cloud-standard")
			sc.Basic = "b-c2"
			return sc
		}(), "basic_contract: basic contract \"b-c2\" belongs to customer \"c2\""},
	}
	for _, tt := range tests {
		_, err := p.store.Create(ctx, ten, "t", KindServiceContract, tt.sc)
		if got := fieldOf(err); !strings.Contains(got, "\n"+tt.field) {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.field)
		}
	}
	// The valid tree: a parent contract and its option.
	if _, err := p.store.Create(ctx, ten, "t", KindServiceContract, serviceContract("k1", "c1", "cloud", "", "cloud-standard")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.Create(ctx, ten, "t", KindServiceContract, serviceContract("k2", "c1", "cloud-backup", "k1", "backup-flat")); err != nil {
		t.Fatal(err)
	}
	// Deletes that would leave references dangling are refused, naming them.
	for _, tt := range []struct {
		kind Kind
		id   string
		by   string
	}{
		{KindPlan, "cloud-standard", "service_contract k1 plans"},
		{KindCustomer, "c1", "basic_contract b-c1 customer"},
		{KindBasicContract, "b-c1", "service_contract k1 basic_contract"},
		{KindServiceContract, "k1", "service_contract k2 parent"},
		{KindService, "cloud", "service_contract k1 service"},
		{KindFee, "backup-monthly", "plan backup-flat versions[0].fees[0]"},
	} {
		_, err := p.store.Delete(ctx, ten, "t", tt.kind, tt.id, nil)
		var re *ReferencedError
		if !errors.As(err, &re) {
			t.Errorf("delete %s %s: %v", tt.kind, tt.id, err)
			continue
		}
		var names []string
		for _, r := range re.By {
			names = append(names, r.Kind.String()+" "+r.ID+" "+r.Field)
		}
		if !strings.Contains(strings.Join(names, ","), tt.by) {
			t.Errorf("delete %s %s refused naming %v, want %s", tt.kind, tt.id, names, tt.by)
		}
	}
	// Changing the basic contract's currency would contradict the plans.
	b := basic("b-c1", "c1")
	b.Currency = "USD"
	if got := fieldOf(func() error { _, err := p.store.Update(ctx, ten, "t", KindBasicContract, "b-c1", nil, b); return err }()); !strings.Contains(got, "\ncurrency: service contract") {
		t.Errorf("currency change: %s", got)
	}
	// 解約: cancelling the parent ends the option with it; history is kept.
	if _, err := p.store.Transact(ctx, ten, "t", func(tx *Tx) error {
		return tx.CancelServiceContract("k1", rev(1), day("2026-06-30"))
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"k1", "k2"} {
		got, err := p.store.Get(ctx, ten, KindServiceContract, id)
		sc := got.Value.(*catalog.ServiceContract)
		if err != nil || !sc.Cancelled || sc.End == nil || *sc.End != day("2026-06-30") || *sc.Plans[0].End != day("2026-06-30") || got.Revision != 2 {
			t.Errorf("%s after cancel: %+v %v", id, sc, err)
		}
	}
	if n := p.replica.Count(ten, KindServiceContract, Query{Terms: []Term{{Facet: "status", Value: "cancelled"}}}); n != 2 {
		t.Errorf("cancelled contracts: %d", n)
	}
	// Once nothing references them, children then parents can go.
	for _, id := range []string{"k2", "k1"} {
		if _, err := p.store.Delete(ctx, ten, "t", KindServiceContract, id, rev(2)); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if _, err := p.store.Delete(ctx, ten, "t", KindPlan, "cloud-standard", nil); err == nil {
		t.Error("plan cloud-standard deleted though service cloud offers it")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestReplicaFollowsAndReloads(t *testing.T) {
	e := newEnv(t)
	writer, reader := e.start(), e.start()
	ctx := context.Background()
	ten := tenantFor(t, "follow")
	putMasters(t, writer.store, ten, demoCatalogue(t))

	// A price change written by one process reaches the other's replica.
	updates, stop := reader.replica.Subscribe()
	defer stop()
	before := reader.replica.Version(ten)
	rt, err := writer.store.Get(ctx, ten, KindRateTable, "storage-per-unit")
	if err != nil {
		t.Fatal(err)
	}
	changed := *rt.Value.(*catalog.RateTable)
	changed.Versions = append([]catalog.RateTableVersion(nil), changed.Versions...)
	price := decimal.RequireFromString("1.35")
	changed.Versions[0].UnitPrice = &price
	start := time.Now()
	if _, err := writer.store.Update(ctx, ten, "w", KindRateTable, "storage-per-unit", rev(1), &changed); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(2 * time.Second)
	for reader.replica.Version(ten) == before || reader.replica.Version(ten) < writer.replica.Version(ten) {
		select {
		case <-updates:
		case <-deadline:
			t.Fatalf("the other replica did not see the change within 2 s (version %d, writer %d)", reader.replica.Version(ten), writer.replica.Version(ten))
		}
	}
	t.Logf("propagated in %s", time.Since(start))
	cat := reader.replica.Catalogue(ten)
	var got string
	for _, r := range cat.RateTables {
		if r.Code == "storage-per-unit" {
			got = r.Versions[0].UnitPrice.String()
		}
	}
	if got != "1.35" {
		t.Fatalf("the other replica's catalogue prices storage at %s", got)
	}

	// A process started later loads everything, tombstones included.
	if _, err := writer.store.Create(ctx, ten, "w", KindElement, element("tmp")); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.store.Delete(ctx, ten, "w", KindElement, "tmp", rev(1)); err != nil {
		t.Fatal(err)
	}
	fresh := e.start()
	if fresh.replica.Version(ten) != writer.replica.Version(ten) {
		t.Errorf("fresh replica at %d, writer at %d", fresh.replica.Version(ten), writer.replica.Version(ten))
	}
	if got, ok := fresh.replica.Get(ten, KindElement, "tmp"); !ok || !got.Deleted || got.Revision != 2 {
		t.Errorf("tombstone after reload: %+v %v", got, ok)
	}
	if n := fresh.replica.Count(ten, KindElement, Query{}); n != 3 {
		t.Errorf("%d live elements after reload, want 3", n)
	}
	if got, err := fresh.store.Create(ctx, ten, "w", KindElement, element("tmp")); err != nil || got.Revision != 3 {
		t.Errorf("re-create after reload: %+v %v", got, err)
	}
}

func TestCustomersAreEncrypted(t *testing.T) {
	e := newEnv(t)
	p := e.start()
	ctx := context.Background()
	tenA, tenB := tenantFor(t, "a"), tenantFor(t, "b")
	secret := catalog.Personal{Name: "Yamada Taro Secretname", Address: "1-2-3 Chiyoda, Tokyo Secretstreet",
		Phone: "+81 3-1234-5678", Email: "Taro.Secret@example.jp"}
	for _, ten := range []string{tenA, tenB} {
		if _, err := p.store.Create(ctx, ten, "t", KindCustomer, &catalog.Customer{ID: "c1", Personal: secret,
			Attributes: map[string]string{"tier": "gold"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.store.Create(ctx, tenA, "t", KindCustomer, &catalog.Customer{ID: "c2", Personal: catalog.Personal{Email: "other@example.jp"}}); err != nil {
		t.Fatal(err)
	}
	// Update with the same personal fields changes nothing; a new e-mail does.
	if got, err := p.store.Update(ctx, tenA, "t", KindCustomer, "c1", rev(1), &catalog.Customer{ID: "c1", Personal: secret,
		Attributes: map[string]string{"tier": "gold"}}); err != nil || got.Revision != 1 {
		t.Fatalf("identical update: %+v %v", got, err)
	}
	got, err := p.store.Get(ctx, tenA, KindCustomer, "c1")
	if err != nil || got.Value.(*catalog.Customer).Personal != secret {
		t.Fatalf("get: %+v %v", got, err)
	}

	// No plaintext anywhere in any table the store writes.
	needles := []string{"Yamada", "Secretname", "Secretstreet", "1234-5678", "12345678", "Taro.Secret", "taro.secret", "example.jp"}
	for _, table := range []string{"catalog_entities", "catalog_current", "catalog_log", "catalog_heads", "tenant_keys"} {
		rows, err := e.conn.Query(ctx, "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			vals := make([]any, len(rows.Columns()))
			for i, ct := range rows.ColumnTypes() {
				vals[i] = newScanTarget(ct.ScanType())
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatal(err)
			}
			n++
			raw := strings.ToLower(dumpValues(vals))
			for _, s := range needles {
				if strings.Contains(raw, strings.ToLower(s)) {
					t.Errorf("%s holds %q in plaintext: %s", table, s, raw)
				}
			}
		}
		rows.Close()
		if n == 0 && table != "catalog_heads" {
			t.Errorf("%s is empty: the check proves nothing", table)
		}
	}

	// Exact search by e-mail, however it is typed, through the blind index.
	term, err := p.store.BlindTerm(ctx, tenA, "email", "  TARO.SECRET@EXAMPLE.JP ")
	if err != nil {
		t.Fatal(err)
	}
	found, _ := p.replica.Search(tenA, KindCustomer, Query{Terms: []Term{term}}, 0, 10)
	if len(found) != 1 || found[0].ID != "c1" {
		t.Fatalf("search by e-mail: %+v", found)
	}
	phone, _ := p.store.BlindTerm(ctx, tenA, "phone", "+8131234 5678")
	if n := p.replica.Count(tenA, KindCustomer, Query{Terms: []Term{phone}}); n != 1 {
		t.Errorf("search by phone: %d", n)
	}
	// Each tenant has its own key: the same e-mail has another blind index.
	termB, _ := p.store.BlindTerm(ctx, tenB, "email", secret.Email)
	if termB.Value == term.Value {
		t.Error("two tenants share a blind index key")
	}
	if n := p.replica.Count(tenB, KindCustomer, Query{Terms: []Term{term}}); n != 0 {
		t.Errorf("tenant A's blind index finds %d customers of tenant B", n)
	}
	// A ciphertext moved to another customer does not open.
	a, _ := p.replica.Get(tenA, KindCustomer, "c1")
	moved := *a.Value.(*StoredCustomer)
	moved.ID = "c2"
	if _, err := p.store.Open(ctx, tenA, Entity{Kind: KindCustomer, Value: &moved}); err == nil {
		t.Error("a ciphertext opened for another customer")
	}
}

func newScanTarget(t reflect.Type) any { return reflect.New(t).Interface() }

// dumpValues renders scanned column values as text.
func dumpValues(vals []any) string {
	var b strings.Builder
	for _, v := range vals {
		fmt.Fprintf(&b, "%v|", reflect.ValueOf(v).Elem().Interface())
	}
	return b.String()
}

// A master key rotation: the data key is rewrapped with the new master key,
// after which the old one can go; the data is never re-encrypted.
func TestMasterKeyRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ten := tenantFor(t, "rotate")
	oldLine, _ := vault.NewMasterKeyLine()
	newLine, _ := vault.NewMasterKeyLine()
	oldOnly, _ := vault.ParseMasterKeys(oldLine)
	both, _ := vault.ParseMasterKeys(newLine + "\n" + oldLine)
	newOnly, _ := vault.ParseMasterKeys(newLine)

	secret := []byte(`{"email":"rotate@example.jp"}`)
	sealed, err := vault.New(e.conn, e.rdb, oldOnly).Seal(ctx, ten, "c1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vault.New(e.conn, e.rdb, newOnly).Open(ctx, ten, "c1", sealed); err == nil {
		t.Fatal("opened with a master key that never wrapped the data key")
	}
	n, err := vault.New(e.conn, e.rdb, both).Rewrap(ctx)
	if err != nil || n != 1 {
		t.Fatalf("rewrap: %d %v", n, err)
	}
	got, err := vault.New(e.conn, e.rdb, newOnly).Open(ctx, ten, "c1", sealed)
	if err != nil || string(got) != string(secret) {
		t.Fatalf("open after rotation: %s %v", got, err)
	}
	if n, err := vault.New(e.conn, e.rdb, both).Rewrap(ctx); err != nil || n != 0 {
		t.Errorf("second rewrap: %d %v", n, err)
	}
}

// Whether a contract has taken effect is judged in the time zone it is
// priced in, at the business clock plus the ingest's future skew: here the
// clock stands at 2026-03-30 23:59:59 in Tokyo (14:59:59 UTC, 10:59:59 in
// New York) and the skew is one hour, so 31 March has come in Tokyo but not
// in UTC or New York. Each case tries the delete in a transaction of its
// own against the committed contracts.
func TestDeleteInEffectByTimeZone(t *testing.T) {
	e := newEnv(t)
	at := time.Date(2026, 3, 30, 14, 59, 59, 0, time.UTC)
	p := e.start(func(o *StoreOptions) {
		o.Now = func() time.Time { return at }
		o.MaxFutureSkew = time.Hour
	})
	ctx := context.Background()
	ten := tenantFor(t, "effect")
	putMasters(t, p.store, ten, demoCatalogue(t))
	create := func(k Kind, v any) {
		t.Helper()
		if _, err := p.store.Create(ctx, ten, "t", k, v); err != nil {
			t.Fatalf("create %s: %v", k, err)
		}
	}
	basicIn := func(id, customer, zone string) *catalog.BasicContract {
		b := basic(id, customer)
		b.TimeZone = zone
		return b
	}
	svc := func(id, customer, basicID, start string) *catalog.ServiceContract {
		return &catalog.ServiceContract{ID: id, Customer: customer, Basic: basicID, Service: "cloud",
			DateRange: catalog.DateRange{Start: day(start)},
			Plans:     []catalog.PricePlanTerm{{Plan: "cloud-standard", DateRange: catalog.DateRange{Start: day(start)}}}}
	}
	disc := func(id, customer, start string) *catalog.DiscountContract {
		return &catalog.DiscountContract{ID: id, Customer: customer, Service: "cloud", DiscountTable: "loyalty",
			DateRange: catalog.DateRange{Start: day(start)}}
	}
	for _, c := range []string{"tokyo", "ny", "both", "none"} {
		create(KindCustomer, &catalog.Customer{ID: c})
	}
	create(KindBasicContract, basicIn("b-tokyo", "tokyo", "Asia/Tokyo"))
	create(KindBasicContract, basicIn("b-ny", "ny", "America/New_York"))
	create(KindBasicContract, basicIn("b-both-ny", "both", "America/New_York"))
	create(KindBasicContract, basicIn("b-both-tokyo", "both", "Asia/Tokyo"))
	create(KindBasicContract, &catalog.BasicContract{ID: "b-utc-0331", Customer: "none", DateRange: catalog.DateRange{Start: day("2026-03-31")},
		Currency: "JPY", TimeZone: "UTC", Rounding: "half_up"})
	create(KindServiceContract, svc("k-tokyo-0331", "tokyo", "b-tokyo", "2026-03-31"))
	create(KindServiceContract, svc("k-tokyo-0401", "tokyo", "b-tokyo", "2026-04-01"))
	create(KindServiceContract, svc("k-ny-0331", "ny", "b-ny", "2026-03-31"))
	create(KindServiceContract, svc("k-ny-0330", "ny", "b-ny", "2026-03-30"))
	create(KindDiscountContract, disc("d-both-0331", "both", "2026-03-31"))
	create(KindDiscountContract, disc("d-ny-0331", "ny", "2026-03-31"))
	create(KindDiscountContract, disc("d-none-0331", "none", "2026-03-31")) // only a UTC basic contract
	create(KindDiscountContract, disc("d-none-0401", "none", "2026-04-01"))

	tests := []struct {
		kind     Kind
		id       string
		inEffect bool
		zone     string
	}{
		{KindServiceContract, "k-tokyo-0331", true, "Asia/Tokyo"},
		{KindServiceContract, "k-tokyo-0401", false, ""},
		{KindServiceContract, "k-ny-0331", false, ""},
		{KindServiceContract, "k-ny-0330", true, "America/New_York"},
		{KindDiscountContract, "d-both-0331", true, "Asia/Tokyo"}, // Tokyo's day comes first
		{KindDiscountContract, "d-ny-0331", false, ""},
		{KindDiscountContract, "d-none-0331", false, ""},
		{KindDiscountContract, "d-none-0401", false, ""},
		{KindBasicContract, "b-utc-0331", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			sentinel := errors.New("rolled back")
			_, err := p.store.Transact(ctx, ten, "t", func(tx *Tx) error {
				if err := tx.Delete(tt.kind, tt.id, nil); err != nil {
					return err
				}
				// Validate as the commit would, then roll back.
				if err := tx.validate(); err != nil {
					return err
				}
				return sentinel
			})
			var ie *InEffectError
			switch {
			case tt.inEffect && (!errors.As(err, &ie) || ie.Zone != tt.zone || ie.ID != tt.id):
				t.Errorf("delete: %v, want InEffectError in %s", err, tt.zone)
			case !tt.inEffect && !errors.Is(err, sentinel):
				t.Errorf("delete: %v, want it allowed", err)
			}
		})
	}
}
