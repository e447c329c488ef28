package catalogstore

import (
	"encoding/json"
	"fmt"
	"time"
	"unsafe"

	"github.com/kakin-dev/kakin/catalog"
)

// Entity is one revision of one entity.
type Entity struct {
	Kind       Kind
	ID         string
	Revision   uint64
	Seq        uint64 // the tenant's commit sequence number of this revision
	CreatedSeq uint64 // the seq of the entity's first revision: its place in search order
	Deleted    bool
	CreatedAt  time.Time
	ChangedAt  time.Time
	ChangedBy  string
	// Value is the document: *catalog.Plan for KindPlan and so on. Customers
	// are *StoredCustomer in replicas and *catalog.Customer (personal
	// fields decrypted) from Store reads. Values are shared and read-only.
	Value any
}

// row is one row of catalog_entities.
type row struct {
	tenant, kind, id string
	revision, seq    uint64
	createdSeq       uint64
	createdAt        time.Time
	deleted          uint8
	changedAt        time.Time
	changedBy        string
	doc, pii         string
	blind            [4]string // name, address, phone, email
	status           string    // a customer's status, read without its document (lean replicas)
	customer         string
	start, end       *time.Time
}

// columns is the column list of catalog_entities in row order.
const columns = `tenant, kind, id, revision, seq, created_seq, created_at, deleted, changed_at, changed_by, doc, pii,
	bi_name, bi_address, bi_phone, bi_email, customer, start_date, end_date`

// selectColumns reads the columns a replica needs. A lean replica (full
// false: raters) reads no ciphertext and no customer documents, only each
// customer's status, which ClickHouse extracts.
func selectColumns(full bool) string {
	if !full {
		return `tenant, kind, id, revision, seq, created_seq, created_at, deleted, changed_at, changed_by,
		if(kind = 'customer', '', doc) AS doc, '' AS pii, '' AS bi_name, '' AS bi_address, '' AS bi_phone, '' AS bi_email,
		visitParamExtractString(doc, 'status') AS status`
	}
	return `tenant, kind, id, revision, seq, created_seq, created_at, deleted, changed_at, changed_by, doc, pii,
	bi_name, bi_address, bi_phone, bi_email, visitParamExtractString(doc, 'status') AS status`
}

func (r *row) scanTargets() []any {
	return []any{&r.tenant, &r.kind, &r.id, &r.revision, &r.seq, &r.createdSeq, &r.createdAt, &r.deleted,
		&r.changedAt, &r.changedBy, &r.doc, &r.pii, &r.blind[0], &r.blind[1], &r.blind[2], &r.blind[3], &r.status}
}

func (r *row) values() []any {
	return []any{r.tenant, r.kind, r.id, r.revision, r.seq, r.createdSeq, r.createdAt, r.deleted, r.changedAt, r.changedBy,
		r.doc, r.pii, r.blind[0], r.blind[1], r.blind[2], r.blind[3], r.customer, r.start, r.end}
}

// decode turns a row into a record, sharing repeated strings through in.
// Tombstones keep no value.
func decode(r *row, in *interner) (Kind, rec, error) {
	k, ok := ParseKind(r.kind)
	if !ok {
		return 0, rec{}, fmt.Errorf("unknown kind %q", r.kind)
	}
	out := rec{id: r.id, created: r.createdSeq, rev: r.revision, seq: r.seq,
		createdAt: r.createdAt.Unix(), changedAt: r.changedAt.Unix(), by: in.s(r.changedBy), deleted: r.deleted == 1}
	if out.deleted {
		return k, out, nil
	}
	if r.doc == "" {
		if k == KindCustomer { // a lean replica's customer: id and status
			out.val = &StoredCustomer{Customer: catalog.Customer{ID: r.id, Status: in.s(r.status)}}
		}
		return k, out, nil
	}
	// A read-only view of the string: Unmarshal copies what it keeps.
	v, err := decodeDoc(k, unsafe.Slice(unsafe.StringData(r.doc), len(r.doc)))
	if err != nil {
		return 0, rec{}, fmt.Errorf("%s %s revision %d: %w", r.kind, r.id, r.revision, err)
	}
	if k == KindCustomer {
		sc := &StoredCustomer{Customer: *v.(*catalog.Customer), Blind: r.blind}
		if r.pii != "" {
			sc.PII = []byte(r.pii)
		}
		sc.Status = in.s(sc.Status)
		v = sc
	}
	internFields(v, in)
	out.val = v
	return k, out, nil
}

// decodeDoc reads a stored document.
func decodeDoc(k Kind, doc []byte) (any, error) {
	if v := k.New(); fastDecode(doc, v) {
		return v, nil
	}
	v := k.New()
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, err
	}
	return v, nil
}

// internFields shares the strings many documents repeat (customer ids,
// codes, currencies) between them.
func internFields(v any, in *interner) {
	switch d := v.(type) {
	case *catalog.BasicContract:
		d.Currency, d.TimeZone = in.s(d.Currency), in.s(d.TimeZone)
	case *catalog.ServiceContract:
		d.Service = in.s(d.Service)
		for i := range d.Plans {
			d.Plans[i].Plan = in.s(d.Plans[i].Plan)
		}
	case *catalog.DiscountContract:
		d.Service, d.DiscountTable = in.s(d.Service), in.s(d.DiscountTable)
	}
}

// encodeDoc renders a document for the doc column. Customers are stored
// without their personal fields.
func encodeDoc(v any) (string, error) {
	if sc, ok := v.(*StoredCustomer); ok {
		c := sc.Customer
		c.Personal = catalog.Personal{}
		v = &c
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// entityOf is the public view of a record.
func entityOf(k Kind, r *rec) Entity {
	return Entity{Kind: k, ID: r.id, Revision: r.rev, Seq: r.seq, CreatedSeq: r.created, Deleted: r.deleted,
		CreatedAt: time.Unix(r.createdAt, 0).UTC(), ChangedAt: time.Unix(r.changedAt, 0).UTC(), ChangedBy: r.by, Value: r.val}
}
