package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/kakin-dev/kakin/app"
	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/chdb"
	"github.com/kakin-dev/kakin/internal/vault"
)

// demoCatalogueFile is the demo tenant's price catalogue.
const demoCatalogueFile = "deploy/demo/catalogue.yaml"

// bootstrapCatalog applies the demo catalogue to tenant demo and registers
// its demo customers (cust-001..003) with a basic contract and a contract on
// the cloud service (cust-001 also with the backup option), on the first run:
// once the tenant has masters, later runs leave what admins changed alone.
func bootstrapCatalog(ctx context.Context, cfg app.Config, log *slog.Logger) error {
	c, err := readCatalogueFile(demoCatalogueFile)
	if err != nil {
		return err
	}
	conn, err := chdb.Open(ctx, cfg.ClickHouse.Chdb())
	if err != nil {
		return err
	}
	defer conn.Close()
	rdb, err := cfg.Redis.Client()
	if err != nil {
		return err
	}
	defer rdb.Close()
	master, err := vault.LoadMasterKeys(cfg.Admin.MasterKeyFile)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)
	replica := catalogstore.NewReplica(conn, catalogstore.ReplicaOptions{Tenants: []string{"demo"}, Log: quiet})
	if err := replica.Load(ctx); err != nil {
		return err
	}
	if replica.Count("demo", catalogstore.KindPlan, catalogstore.Query{}) > 0 {
		return nil
	}
	store := catalogstore.NewStore(conn, rdb, replica, vault.New(conn, rdb, master), catalogstore.StoreOptions{Log: quiet})
	changes, err := applyCatalogue(ctx, store, "demo", "kakin dev", c, true, io.Discard)
	if err != nil {
		return err
	}
	start, _ := catalog.ParseDate("2026-01-01")
	more, err := store.Transact(ctx, "demo", "kakin dev", func(tx *catalogstore.Tx) error {
		for i, name := range []string{"Yamada Taro", "Suzuki Hanako", "Tanaka Ichiro"} {
			id := fmt.Sprintf("cust-%03d", i+1)
			tx.Put(catalogstore.KindCustomer, &catalog.Customer{ID: id, Personal: catalog.Personal{Name: name,
				Email: fmt.Sprintf("%s@example.com", id), Phone: fmt.Sprintf("+81-3-0000-000%d", i+1)}})
			tx.Put(catalogstore.KindBasicContract, &catalog.BasicContract{ID: "basic-" + id, Customer: id,
				DateRange: catalog.DateRange{Start: start}, Currency: "JPY", TimeZone: "Asia/Tokyo", Rounding: "half_up"})
			tx.Put(catalogstore.KindServiceContract, &catalog.ServiceContract{ID: "cloud-" + id, Customer: id, Basic: "basic-" + id,
				Service: "cloud", DateRange: catalog.DateRange{Start: start},
				Plans: []catalog.PricePlanTerm{{Plan: "cloud-standard", DateRange: catalog.DateRange{Start: start}}}})
		}
		tx.Put(catalogstore.KindServiceContract, &catalog.ServiceContract{ID: "backup-cust-001", Customer: "cust-001", Basic: "basic-cust-001",
			Service: "cloud-backup", Parent: "cloud-cust-001", DateRange: catalog.DateRange{Start: start},
			Plans: []catalog.PricePlanTerm{{Plan: "backup-flat", DateRange: catalog.DateRange{Start: start}}}})
		return nil
	})
	if err != nil {
		return err
	}
	if n := len(changes) + len(more); n > 0 {
		log.Info("demo catalogue applied", "tenant", "demo", "revisions", n)
	}
	return nil
}
