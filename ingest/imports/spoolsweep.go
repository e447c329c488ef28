package imports

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/schemas"
)

// JobLookup finds a tenant's job (jobs.Store.Get; jobs.ErrNotFound when
// there is none).
type JobLookup interface {
	Get(ctx context.Context, tenant, id string) (jobs.Job, error)
}

// SpoolGrace is how long a spooled file without a job is left alone: an
// upload being written has a fresh modification time, and its job is
// created right after the last byte is synced.
const SpoolGrace = time.Hour

// DefaultSpoolSweepInterval is how often RunSpoolSweeper sweeps.
const DefaultSpoolSweepInterval = time.Hour

// SweepSpool deletes the spooled files no job will read again: those of
// jobs in a final state (the runner deletes them when a job ends, unless
// its process died first), and those older than SpoolGrace that have no
// job (the upload's process died before creating it). Files of unfinished
// jobs, fresh files and files not named like a spooled upload are kept.
// It returns how many files it deleted.
func (im *Importer) SweepSpool(ctx context.Context, lookup JobLookup, now time.Time) (int, error) {
	tenants, err := os.ReadDir(im.c.Dir)
	if err != nil {
		return 0, fmt.Errorf("spool sweep: %w", err)
	}
	deleted := 0
	for _, t := range tenants {
		if !t.IsDir() || !schemas.ValidTenant(t.Name()) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(im.c.Dir, t.Name()))
		if err != nil {
			return deleted, fmt.Errorf("spool sweep: %w", err)
		}
		for _, f := range files {
			id, format, ok := strings.Cut(f.Name(), ".")
			if !ok || f.IsDir() || !jobs.ValidID(id) || (format != FormatCSV && format != FormatNDJSON) {
				continue
			}
			info, err := f.Info()
			if err != nil {
				continue // deleted meanwhile
			}
			j, err := lookup.Get(ctx, t.Name(), id)
			switch {
			case errors.Is(err, jobs.ErrNotFound):
				if now.Sub(info.ModTime()) < SpoolGrace {
					continue
				}
			case err != nil:
				return deleted, fmt.Errorf("spool sweep: %w", err)
			case !j.Status.Final():
				continue
			}
			path := filepath.Join(im.c.Dir, t.Name(), f.Name())
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return deleted, fmt.Errorf("spool sweep: %w", err)
			}
			im.c.Log.Info("imports: deleted a spooled file no job will read", "path", path)
			im.c.Metrics.spoolSwept.Inc()
			deleted++
		}
	}
	return deleted, nil
}

// RunSpoolSweeper sweeps the spool directory at start and every interval
// (DefaultSpoolSweepInterval when 0) until ctx ends. Several processes
// sharing the directory may all run it: they agree on what to delete.
// Failures are logged and tried again at the next interval; it returns nil.
func (im *Importer) RunSpoolSweeper(ctx context.Context, lookup JobLookup, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultSpoolSweepInterval
	}
	for {
		if _, err := im.SweepSpool(ctx, lookup, time.Now()); err != nil && ctx.Err() == nil {
			im.c.Log.Warn("imports: spool sweep failed; trying again later", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
