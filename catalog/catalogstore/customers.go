package catalogstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/kakin-dev/kakin/catalog"
	"golang.org/x/text/unicode/norm"
)

// StoredCustomer is a customer as the store keeps it: the document with its
// Personal fields empty, the sealed personal fields, and their blind
// indexes. Replicas hold customers in this form; personal fields are only
// decrypted to answer an API read.
type StoredCustomer struct {
	catalog.Customer
	PII   []byte    // AES-256-GCM ciphertext of the Personal JSON; nil when every field is empty
	Blind [4]string // blind indexes of name, address, phone, email ("" for an empty field)
}

// Indexes into StoredCustomer.Blind.
const (
	BlindName = iota
	BlindAddress
	BlindPhone
	BlindEmail
)

var blindFields = [4]string{"name", "address", "phone", "email"}

// Sealer encrypts personal fields and computes blind indexes (package vault).
type Sealer interface {
	Seal(ctx context.Context, tenant, aad string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, tenant, aad string, sealed []byte) ([]byte, error)
	BlindIndex(ctx context.Context, tenant, field, value string) (string, error)
}

func storedOf(v any) *StoredCustomer {
	if s, ok := v.(*StoredCustomer); ok {
		return s
	}
	return &StoredCustomer{Customer: *v.(*catalog.Customer)}
}

func customerID(v any) string {
	switch c := v.(type) {
	case *StoredCustomer:
		return c.ID
	case *catalog.Customer:
		return c.ID
	}
	return ""
}

// Normalize prepares a personal field for its blind index, so that an exact
// search finds the value however it was typed: Unicode NFKC (full-width
// letters and digits become ASCII), surrounding space dropped and inner
// runs of space collapsed; e-mail addresses and names compared without
// case; phone numbers reduced to their digits and a leading +.
func Normalize(field, value string) string {
	v := strings.Join(strings.FieldsFunc(norm.NFKC.String(value), unicode.IsSpace), " ")
	switch field {
	case "email", "name", "address":
		return strings.ToLower(v)
	case "phone":
		var b strings.Builder
		for i, r := range v {
			if r >= '0' && r <= '9' || (r == '+' && i == 0) {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	return v
}

func personalValues(p catalog.Personal) [4]string {
	return [4]string{p.Name, p.Address, p.Phone, p.Email}
}

// seal turns a customer into its stored form for tenant.
func seal(ctx context.Context, s Sealer, tenant string, c *catalog.Customer) (*StoredCustomer, error) {
	out := &StoredCustomer{Customer: *c}
	out.Personal = catalog.Personal{}
	if c.Personal == (catalog.Personal{}) {
		return out, nil
	}
	if s == nil {
		return nil, fmt.Errorf("customers: no master key configured: personal fields cannot be stored")
	}
	pt, err := json.Marshal(c.Personal)
	if err != nil {
		return nil, err
	}
	if out.PII, err = s.Seal(ctx, tenant, c.ID, pt); err != nil {
		return nil, fmt.Errorf("seal personal fields: %w", err)
	}
	for i, v := range personalValues(c.Personal) {
		if v == "" {
			continue
		}
		if out.Blind[i], err = s.BlindIndex(ctx, tenant, blindFields[i], Normalize(blindFields[i], v)); err != nil {
			return nil, fmt.Errorf("blind index: %w", err)
		}
	}
	return out, nil
}

// open returns the customer with its personal fields decrypted.
func open(ctx context.Context, s Sealer, tenant string, sc *StoredCustomer) (*catalog.Customer, error) {
	c := sc.Customer
	if len(sc.PII) == 0 {
		return &c, nil
	}
	if s == nil {
		return nil, fmt.Errorf("customers: no master key configured: personal fields cannot be read")
	}
	pt, err := s.Open(ctx, tenant, sc.ID, sc.PII)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(pt, &c.Personal); err != nil {
		return nil, fmt.Errorf("personal fields: %w", err)
	}
	return &c, nil
}

// blindTerm turns a personal-field search value into its blind index.
func blindTerm(ctx context.Context, s Sealer, tenant, field, value string) (string, error) {
	if s == nil {
		return "", fmt.Errorf("customers: no master key configured")
	}
	return s.BlindIndex(ctx, tenant, field, Normalize(field, value))
}
