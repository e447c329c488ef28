package tenants

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The audit trail: audit_log keeps every version of every entity of a
// tenant, never replaced, keyed by (tenant, entity, entity id, version).

const auditCols = "tenant, entity, entity_id, version, at, actor, change"

// EntityTenant is the entity name of tenants in audit_log; the client store
// records its clients as auth.EntityClient.
const EntityTenant = "tenant"

// Change is one version of an entity of a tenant, as the audit trail
// records it.
type Change struct {
	Tenant   string
	Entity   string // EntityTenant, or the entity name of the store that owns it
	EntityID string
	Version  uint64
	At       time.Time
	Actor    string // who made the change (CheckActor)
	Op       string // the operation: create, set_limits, revoke, …
	// State is the entity after the change, stored as JSON. It must not
	// marshal secrets (the client store's secret hash is unexported).
	State any
}

// CheckActor checks that a change names who makes it, as the audit trail
// records it.
func CheckActor(actor string) error {
	if strings.TrimSpace(actor) == "" {
		return fmt.Errorf("%w: actor (who makes the change) is required", ErrInvalid)
	}
	return nil
}

// Audit appends c to audit_log. A store writes the audit row before the
// new version of its entity, so that no state ever exists without its
// history. Its error is the driver's: the caller adds its operation.
func (s *Store) Audit(ctx context.Context, c Change) error {
	change, err := json.Marshal(struct {
		Op    string `json:"op"`
		State any    `json:"state"`
	}{c.Op, c.State})
	if err != nil {
		return err
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO audit_log ("+auditCols+")")
	if err != nil {
		return err
	}
	if err := b.Append(c.Tenant, c.Entity, c.EntityID, c.Version, c.At, c.Actor, string(change)); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// AuditEntry is one row of audit_log.
type AuditEntry struct {
	Tenant   string          `json:"tenant"`
	Entity   string          `json:"entity"`
	EntityID string          `json:"entityId"`
	Version  uint64          `json:"version"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Change   json.RawMessage `json:"change"`
}

// History returns every recorded version of one entity of tenant, oldest first.
func (s *Store) History(ctx context.Context, tenantID, entity, id string) ([]AuditEntry, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+auditCols+" FROM audit_log WHERE tenant = ? AND entity = ? AND entity_id = ? ORDER BY version",
		tenantID, entity, id)
	if err != nil {
		return nil, wrap("history", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var change string
		if err := rows.Scan(&e.Tenant, &e.Entity, &e.EntityID, &e.Version, &e.At, &e.Actor, &change); err != nil {
			return nil, wrap("history", err)
		}
		e.At, e.Change = e.At.UTC(), json.RawMessage(change)
		out = append(out, e)
	}
	return out, wrap("history", rows.Err())
}
