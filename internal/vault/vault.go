// Package vault encrypts personal data per tenant: every tenant gets its own
// random 32-byte data key, stored in ClickHouse (tenant_keys) only wrapped
// (AES-256-GCM) by a master key from a file that never leaves the processes.
// Data is sealed with AES-256-GCM under the tenant's data key, bound to the
// row it belongs to, and a keyed blind index (HMAC-SHA256 with a key derived
// from the data key) allows exact-match search without storing plaintext.
package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"github.com/kakin-dev/kakin/internal/redislock"
)

// ErrNoKey means a ciphertext names a data key the tenant does not have.
var ErrNoKey = errors.New("vault: unknown data key")

// Vault seals and opens tenants' personal data.
type Vault struct {
	conn   driver.Conn
	rdb    redis.UniversalClient // serialises key creation across processes; may be nil
	master *MasterKeys
	actor  string

	mu      sync.Mutex
	tenants map[string]*tenantKeys
}

// tenantKeys are a tenant's unwrapped data keys.
type tenantKeys struct {
	primary  dataKey            // seals new data and derives the blind-index key
	byID     map[string]dataKey // every key, to open old data
	blindKey []byte
}

type dataKey struct {
	id   string // 16 hex characters
	aead cipher.AEAD
}

// New returns a vault over the tenant_keys table.
func New(conn driver.Conn, rdb redis.UniversalClient, master *MasterKeys) *Vault {
	return &Vault{conn: conn, rdb: rdb, master: master, actor: "kakin", tenants: map[string]*tenantKeys{}}
}

const (
	sealVersion = 1
	keyIDBytes  = 8
	nonceBytes  = 12
)

// Seal encrypts plaintext for tenant, bound to aad (e.g. the customer id): a
// ciphertext moved to another row or tenant does not open.
func (v *Vault) Seal(ctx context.Context, tenant, aad string, plaintext []byte) ([]byte, error) {
	keys, err := v.keys(ctx, tenant, "")
	if err != nil {
		return nil, err
	}
	id, _ := hex.DecodeString(keys.primary.id)
	out := make([]byte, 0, 1+keyIDBytes+nonceBytes+len(plaintext)+16)
	out = append(out, sealVersion)
	out = append(out, id...)
	nonce := make([]byte, nonceBytes)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return keys.primary.aead.Seal(out, nonce, plaintext, sealAAD(tenant, aad)), nil
}

// Open decrypts what Seal returned for the same tenant and aad.
func (v *Vault) Open(ctx context.Context, tenant, aad string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+keyIDBytes+nonceBytes+16 || sealed[0] != sealVersion {
		return nil, errors.New("vault: not a sealed value")
	}
	id := hex.EncodeToString(sealed[1 : 1+keyIDBytes])
	keys, err := v.keys(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	k, ok := keys.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w %s of tenant %s", ErrNoKey, id, tenant)
	}
	nonce := sealed[1+keyIDBytes : 1+keyIDBytes+nonceBytes]
	pt, err := k.aead.Open(nil, nonce, sealed[1+keyIDBytes+nonceBytes:], sealAAD(tenant, aad))
	if err != nil {
		return nil, fmt.Errorf("vault: open: %w", err)
	}
	return pt, nil
}

// BlindIndex returns the tenant's keyed blind index of value for field: 16
// bytes of HMAC-SHA256, hex. Equal (already normalised) values give equal
// indexes; without the key the index reveals nothing about the value.
func (v *Vault) BlindIndex(ctx context.Context, tenant, field, value string) (string, error) {
	keys, err := v.keys(ctx, tenant, "")
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, keys.blindKey)
	mac.Write([]byte(field))
	mac.Write([]byte{0})
	mac.Write([]byte(value))
	return hex.EncodeToString(mac.Sum(nil)[:16]), nil
}

func sealAAD(tenant, aad string) []byte {
	return []byte(fmt.Sprintf("kakin pii v1|%d:%s|%s", len(tenant), tenant, aad))
}

func wrapAAD(tenant, keyID string) []byte {
	return []byte(fmt.Sprintf("kakin tenant key v1|%d:%s|%s", len(tenant), tenant, keyID))
}

// keys returns the tenant's keys, loading them from ClickHouse (and creating
// the first one) when needed, or when want names a key not loaded yet.
func (v *Vault) keys(ctx context.Context, tenant, want string) (*tenantKeys, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k := v.tenants[tenant]; k != nil {
		if _, ok := k.byID[want]; want == "" || ok {
			return k, nil
		}
	}
	k, err := v.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if k == nil {
		if k, err = v.create(ctx, tenant); err != nil {
			return nil, err
		}
	}
	v.tenants[tenant] = k
	return k, nil
}

type keyRow struct {
	id, masterKID string
	wrapped       []byte
	created       time.Time
}

// load reads and unwraps every data key of the tenant; nil when it has none.
// The primary key is the oldest one (then the smallest id), so that every
// process picks the same one even if two keys were ever created at once.
func (v *Vault) load(ctx context.Context, tenant string) (*tenantKeys, error) {
	rows, err := v.conn.Query(ctx, `SELECT key_id, master_kid, wrapped, created_at FROM tenant_keys WHERE tenant = ?`, tenant)
	if err != nil {
		return nil, fmt.Errorf("vault: read tenant keys: %w", err)
	}
	defer rows.Close()
	var list []keyRow
	for rows.Next() {
		var r keyRow
		var wrapped string
		if err := rows.Scan(&r.id, &r.masterKID, &wrapped, &r.created); err != nil {
			return nil, fmt.Errorf("vault: read tenant keys: %w", err)
		}
		r.wrapped = []byte(wrapped)
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vault: read tenant keys: %w", err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].created.Equal(list[j].created) {
			return list[i].created.Before(list[j].created)
		}
		return list[i].id < list[j].id
	})
	k := &tenantKeys{byID: map[string]dataKey{}}
	var firstErr error
	for _, r := range list {
		if _, done := k.byID[r.id]; done {
			continue // the same key wrapped by another master key
		}
		raw, err := v.master.unwrap(r.masterKID, r.wrapped, wrapAAD(tenant, r.id))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		dk, err := newDataKey(r.id, raw)
		if err != nil {
			return nil, err
		}
		if len(k.byID) == 0 {
			k.primary = dk
			k.blindKey = deriveBlindKey(raw)
		}
		k.byID[r.id] = dk
	}
	if len(k.byID) == 0 {
		return nil, fmt.Errorf("vault: no data key of tenant %s can be unwrapped with the master keys: %w", tenant, firstErr)
	}
	return k, nil
}

// create makes the tenant's first data key. Creation is serialised across
// processes by a Redis lock (redislock, vault:keylock:<tenant>, 10 s TTL,
// waited for up to 10 s); under it the table is read again.
func (v *Vault) create(ctx context.Context, tenant string) (*tenantKeys, error) {
	if v.rdb != nil {
		lock, err := redislock.Acquire(ctx, v.rdb, "vault:keylock:"+tenant, "", 10*time.Second, 10*time.Second)
		if errors.Is(err, redislock.ErrNotAcquired) {
			return nil, errors.New("vault: timed out waiting for another process creating the tenant's key")
		}
		if err != nil {
			return nil, fmt.Errorf("vault: key lock: %w", err)
		}
		defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()
		if k, err := v.load(ctx, tenant); err != nil || k != nil {
			return k, err
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	id := randomHex(keyIDBytes)
	kid, wrapped, err := v.master.wrap(raw, wrapAAD(tenant, id))
	if err != nil {
		return nil, err
	}
	batch, err := v.conn.PrepareBatch(ctx, "INSERT INTO tenant_keys (tenant, key_id, wrapped, master_kid, created_at, created_by)")
	if err != nil {
		return nil, fmt.Errorf("vault: store key: %w", err)
	}
	if err := batch.Append(tenant, id, string(wrapped), kid, time.Now().UTC().Truncate(time.Second), v.actor); err != nil {
		return nil, fmt.Errorf("vault: store key: %w", err)
	}
	if err := batch.Send(); err != nil {
		return nil, fmt.Errorf("vault: store key: %w", err)
	}
	// Read back: should another process have created one at the same time
	// despite the lock, everyone agrees on the oldest.
	k, err := v.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, errors.New("vault: the new data key is not readable")
	}
	return k, nil
}

// Rewrap wraps every data key of every tenant with the first master key
// (after a master key rotation), adding rows; old rows stay readable while
// their master key is listed. It returns how many keys it rewrapped.
func (v *Vault) Rewrap(ctx context.Context) (int, error) {
	rows, err := v.conn.Query(ctx, `SELECT tenant, key_id, master_kid, wrapped FROM tenant_keys`)
	if err != nil {
		return 0, err
	}
	type have struct{ tenant, id string }
	wrappedBy := map[have][]string{}
	raws := map[have][]byte{}
	for rows.Next() {
		var t, id, kid, w string
		if err := rows.Scan(&t, &id, &kid, &w); err != nil {
			rows.Close()
			return 0, err
		}
		h := have{t, id}
		wrappedBy[h] = append(wrappedBy[h], kid)
		if raw, err := v.master.unwrap(kid, []byte(w), wrapAAD(t, id)); err == nil {
			raws[h] = raw
		}
	}
	rows.Close()
	n := 0
	for h, kids := range wrappedBy {
		first := v.master.first
		if containsString(kids, first) {
			continue
		}
		raw, ok := raws[h]
		if !ok {
			return n, fmt.Errorf("vault: key %s of tenant %s cannot be unwrapped with any master key", h.id, h.tenant)
		}
		kid, wrapped, err := v.master.wrap(raw, wrapAAD(h.tenant, h.id))
		if err != nil {
			return n, err
		}
		batch, err := v.conn.PrepareBatch(ctx, "INSERT INTO tenant_keys (tenant, key_id, wrapped, master_kid, created_at, created_by)")
		if err != nil {
			return n, err
		}
		// created_at is the original's: the primary key choice must not change.
		var created time.Time
		if err := v.conn.QueryRow(ctx, `SELECT min(created_at) FROM tenant_keys WHERE tenant = ? AND key_id = ?`, h.tenant, h.id).Scan(&created); err != nil {
			return n, err
		}
		if err := batch.Append(h.tenant, h.id, string(wrapped), kid, created, "rewrap"); err != nil {
			return n, err
		}
		if err := batch.Send(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func newDataKey(id string, raw []byte) (dataKey, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return dataKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return dataKey{}, err
	}
	return dataKey{id: id, aead: aead}, nil
}

func deriveBlindKey(dataKey []byte) []byte {
	mac := hmac.New(sha256.New, dataKey)
	mac.Write([]byte("kakin blind index key v1"))
	return mac.Sum(nil)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
