package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/kakin-dev/kakin/catalog/catalogstore"
	"github.com/kakin-dev/kakin/internal/jobs"
)

// Catalogue finds a tenant's catalogue entities (catalogstore.Replica).
type Catalogue interface {
	Get(tenant string, k catalogstore.Kind, id string) (catalogstore.Entity, bool)
}

// Handler runs report jobs.
type Handler struct {
	db  *DB
	cat Catalogue
	dir string
	log *slog.Logger
	// PartnerName names a tenant in reports (default: the tenant id).
	PartnerName func(tenant string) string
}

// NewHandler returns the job handler: reports read db, names come from cat,
// files go under dir.
func NewHandler(db *DB, cat Catalogue, dir string, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{db: db, cat: cat, dir: dir, log: log}
}

// Dir is the report directory.
func (h *Handler) Dir() string { return h.dir }

// Phases of a run, saved in the job's checkpoint after each is durable.
const (
	phaseDays = "days" // usage_daily holds the period's days
	phaseFile = "file" // the file is written, fsynced and renamed
)

func failed(format string, args ...any) jobs.Outcome {
	return jobs.Outcome{Status: jobs.StatusFailed, Error: fmt.Sprintf(format, args...)}
}

// Run computes the period's days, then writes the file. A run that was
// killed restarts the phase it was in: both are idempotent.
func (h *Handler) Run(ctx context.Context, run *jobs.Run) (jobs.Outcome, error) {
	j := run.Job()
	r, err := FromJob(j)
	if err != nil {
		return failed("%v", err), nil
	}
	p, res := r.Params, r.Result
	first, last, loc, err := p.Period()
	if err != nil {
		return failed("invalid parameters: %v", err), nil
	}
	if res.Phase == "" {
		if p.Group != "" {
			e, ok := h.cat.Get(j.Tenant, catalogstore.KindGroup, p.Group)
			if !ok || e.Deleted {
				return failed("no customer group %q in this tenant", p.Group), nil
			}
			g := e.Value.(*catalog.Group)
			res.Customers, res.GroupName = append([]string{}, g.Members...), g.Name
		}
		res.Version = Version(time.Now())
		start := time.Now()
		n, err := h.db.ComputeDays(ctx, j.Tenant, first, last, loc, res.Version)
		if err != nil {
			return jobs.Outcome{}, err
		}
		res.Phase, res.Days = phaseDays, n
		h.log.Info("reports: days computed", "report", j.ID, "tenant", j.Tenant, "rows", n, "took", time.Since(start))
		if err := save(ctx, run, res); err != nil {
			return jobs.Outcome{}, err
		}
	}
	if cancel, err := run.CancelRequested(ctx); err == nil && cancel {
		return jobs.Outcome{Status: jobs.StatusCancelled}, nil
	}
	if res.Phase == phaseDays {
		start := time.Now()
		if err := h.writeFile(ctx, j.Tenant, j.ID, p, &res); err != nil {
			return jobs.Outcome{}, err
		}
		res.Phase = phaseFile
		h.log.Info("reports: file written", "report", j.ID, "tenant", j.Tenant, "rows", res.Rows, "bytes", res.Bytes, "took", time.Since(start))
		if err := save(ctx, run, res); err != nil {
			return jobs.Outcome{}, err
		}
	}
	// Deleted while it ran: its file must not outlive the deletion.
	if deleted, err := h.db.Deleted(ctx, j.Tenant, j.ID); err != nil {
		return jobs.Outcome{}, err
	} else if deleted {
		_ = RemoveFile(h.dir, j.Tenant, j.ID)
		return jobs.Outcome{Status: jobs.StatusCancelled}, nil
	}
	return jobs.Outcome{Status: jobs.StatusCompleted}, nil
}

func save(ctx context.Context, run *jobs.Run, res Result) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return run.Save(ctx, jobs.Counts{Total: uint64(res.Rows), Processed: uint64(res.Rows), Accepted: uint64(res.Rows)}, b)
}

// Finished frees nothing: a report's file stays until the report is deleted.
func (h *Handler) Finished(jobs.Job) {}

// countingWriter counts and hashes what it writes.
type countingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	return n, err
}

// writeFile writes the report's rows to <dir>/<tenant>/<id>.<ext> through a
// temporary file that is fsynced and renamed, so a file under the final name
// is always whole.
func (h *Handler) writeFile(ctx context.Context, tenant, id string, p Params, res *Result) error {
	final := filepath.Join(h.dir, fileName(tenant, id, p.Format))
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return fmt.Errorf("reports: report directory: %w", err)
	}
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("reports: create file: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	cw := &countingWriter{w: f, h: sha256.New()}
	rw, err := NewRowWriter(cw, p.Format, p.Type)
	if err != nil {
		return err
	}
	var customers []string
	if p.Group != "" {
		customers = res.Customers
		if customers == nil {
			customers = []string{}
		}
	}
	names := newNames(h.cat, tenant)
	partnerName, partnerID := tenant, tenant
	if h.PartnerName != nil {
		partnerName = h.PartnerName(tenant)
	}
	if p.Group != "" {
		partnerName, partnerID = res.GroupName, p.Group
	}
	_, _, loc, err := p.Period()
	if err != nil {
		return err
	}
	first, last, _, _ := p.Period()
	var n int64
	row := Row{PartnerName: partnerName, PartnerID: partnerID}
	err = h.db.Aggregates(ctx, tenant, loc.String(), first, last, res.Version, p.Type, customers, func(a *Aggregate) error {
		names.fill(&row, p.Type, a)
		n++
		return rw.Write(&row)
	})
	if err != nil {
		return err
	}
	if err := rw.Close(); err != nil {
		return fmt.Errorf("reports: write file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("reports: sync file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("reports: close file: %w", err)
	}
	f = nil
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("reports: rename file: %w", err)
	}
	if d, err := os.Open(filepath.Dir(final)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	res.Rows, res.Bytes, res.SHA256 = n, cw.n, hex.EncodeToString(cw.h.Sum(nil))
	res.FileName = fileName(tenant, id, p.Format)
	return nil
}

// names looks catalogue names up once per id.
type names struct {
	cat       Catalogue
	tenant    string
	services  map[string]string // contract → service name
	elements  map[string]string // element → name
	externals map[string]string // customer → external id
}

func newNames(cat Catalogue, tenant string) *names {
	return &names{cat: cat, tenant: tenant, services: map[string]string{}, elements: map[string]string{}, externals: map[string]string{}}
}

func (n *names) service(contract string) string {
	if s, ok := n.services[contract]; ok {
		return s
	}
	name := ""
	if e, ok := n.cat.Get(n.tenant, catalogstore.KindServiceContract, contract); ok && contract != "" {
		code := e.Value.(*catalog.ServiceContract).Service
		name = code
		if se, ok := n.cat.Get(n.tenant, catalogstore.KindService, code); ok {
			if s := se.Value.(*catalog.Service); s.Name != "" {
				name = s.Name
			}
		}
	}
	n.services[contract] = name
	return name
}

func (n *names) element(code string) string {
	if s, ok := n.elements[code]; ok {
		return s
	}
	name := ""
	if e, ok := n.cat.Get(n.tenant, catalogstore.KindElement, code); ok {
		name = e.Value.(*catalog.Element).Name
	}
	n.elements[code] = name
	return name
}

func (n *names) external(customer string) string {
	if s, ok := n.externals[customer]; ok {
		return s
	}
	ext := ""
	if e, ok := n.cat.Get(n.tenant, catalogstore.KindCustomer, customer); ok {
		switch c := e.Value.(type) {
		case *catalogstore.StoredCustomer:
			ext = c.Attributes[AttrExternalID]
		case *catalog.Customer:
			ext = c.Attributes[AttrExternalID]
		}
	}
	n.externals[customer] = ext
	return ext
}

// fill sets row from an aggregate of a report of type t (keys as
// groupColumns orders them).
func (n *names) fill(row *Row, t Type, a *Aggregate) {
	k := a.Keys
	row.Quantity, row.Start, row.End = a.Quantity, a.Start, a.End
	switch t {
	case TypePartner:
		row.SubscriptionID, row.SKU = k[0], k[1]
	case TypeCustomer:
		row.CustomerID, row.SubscriptionID, row.SKU, row.LocationID = k[0], k[1], k[2], k[3]
		row.CustomerExternalID = n.external(k[0])
	default:
		row.CustomerID, row.SubscriptionID, row.SKU, row.UserID = k[0], k[1], k[2], k[3]
		row.SubscriberID, row.WorkspaceID, row.LocationID = k[4], k[5], k[6]
		if row.SubscriberID == "" {
			row.SubscriberID = row.UserID
		}
		row.CustomerExternalID = n.external(k[0])
	}
	row.ServiceName, row.Description = n.service(row.SubscriptionID), n.element(row.SKU)
}

// ErrNoFile means a completed report's file is missing (its directory is
// not shared with the process that wrote it).
var ErrNoFile = errors.New("the report file is not on this server")

// Open opens a completed report's file.
func (h *Handler) Open(r Report) (*os.File, error) {
	if r.Result.FileName == "" {
		return nil, ErrNoFile
	}
	f, err := os.Open(filepath.Join(h.dir, r.Result.FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoFile
	}
	return f, err
}
