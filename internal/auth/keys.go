package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MinKeyBytes is the shortest accepted token signing key.
const MinKeyBytes = 32

// KeyRing holds the HMAC-SHA256 keys of access tokens. Its file has one key
// per line, "kid base64url-secret" (secret at least 32 bytes, padding
// optional); blank lines and lines starting with # are ignored. The first key
// signs new tokens; every key verifies tokens whose "kid" header names it.
// All processes that issue or verify tokens must share the file's keys.
//
// Rotation:
//
//  1. Generate a key (NewKeyLine) and put it on the FIRST line of the file on
//     every process. From then on new tokens are signed with it; tokens signed
//     with the old key still verify because the old key is still listed.
//  2. After the longest token TTL (--token-ttl, 1h by default) plus the
//     verification leeway has passed, no unexpired token is signed with the old
//     key: delete its line everywhere. Tokens still carrying it are refused.
//
// The file is re-read by Reload (the Authenticator calls it on every
// revocation refresh, and it is cheap when the file did not change), so no
// restart is needed. Because processes pick up the file at slightly different
// times, a process that already signs with the new key may hand out tokens
// that another process does not know yet for up to one refresh interval. To
// avoid even that, do step 1 in two steps: first add the new key as the LAST
// line everywhere (verify-only), wait one refresh interval, then move it to the
// first line.
type KeyRing struct {
	path string
	mu   sync.Mutex // serialises Reload
	set  atomic.Pointer[keySet]
}

type keySet struct {
	signKID string
	signKey []byte
	byKID   map[string][]byte
	kids    []string
	raw     []byte // file contents, to skip re-parsing an unchanged file
}

// LoadKeyRing reads the key file at path.
func LoadKeyRing(path string) (*KeyRing, error) {
	k := &KeyRing{path: path}
	if _, err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// ParseKeyRing builds a key ring from the text of a key file (no file
// behind it: Reload does nothing).
func ParseKeyRing(text string) (*KeyRing, error) {
	set, err := parseKeys([]byte(text))
	if err != nil {
		return nil, err
	}
	k := &KeyRing{}
	k.set.Store(set)
	return k, nil
}

// Reload re-reads the key file and reports whether the keys changed. On an
// error the ring keeps its previous keys.
func (k *KeyRing) Reload() (changed bool, err error) {
	if k.path == "" {
		return false, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	raw, err := os.ReadFile(k.path)
	if err != nil {
		return false, fmt.Errorf("token keys: %w", err)
	}
	if old := k.set.Load(); old != nil && bytes.Equal(old.raw, raw) {
		return false, nil
	}
	set, err := parseKeys(raw)
	if err != nil {
		return false, fmt.Errorf("token keys %s: %w", k.path, err)
	}
	k.set.Store(set)
	return true, nil
}

// SigningKID is the id of the key that signs new tokens.
func (k *KeyRing) SigningKID() string { return k.set.Load().signKID }

// KIDs lists the key ids, signing key first.
func (k *KeyRing) KIDs() []string { return append([]string(nil), k.set.Load().kids...) }

func (k *KeyRing) signing() (string, []byte) {
	s := k.set.Load()
	return s.signKID, s.signKey
}

func (k *KeyRing) lookup(kid string) ([]byte, bool) {
	key, ok := k.set.Load().byKID[kid]
	return key, ok
}

func parseKeys(raw []byte) (*keySet, error) {
	set := &keySet{byKID: map[string][]byte{}, raw: raw}
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"kid base64url-secret\"", n+1)
		}
		kid, enc := f[0], strings.TrimRight(f[1], "=")
		if len(kid) > 64 {
			return nil, fmt.Errorf("line %d: kid longer than 64 characters", n+1)
		}
		key, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("line %d: key %s: secret is not base64url: %w", n+1, kid, err)
		}
		if len(key) < MinKeyBytes {
			return nil, fmt.Errorf("line %d: key %s: secret has %d bytes, want at least %d", n+1, kid, len(key), MinKeyBytes)
		}
		if _, dup := set.byKID[kid]; dup {
			return nil, fmt.Errorf("line %d: key id %s listed twice", n+1, kid)
		}
		if set.signKID == "" {
			set.signKID, set.signKey = kid, key
		}
		set.byKID[kid] = key
		set.kids = append(set.kids, kid)
	}
	if set.signKID == "" {
		return nil, errors.New("no keys")
	}
	return set, nil
}

// NewKeyLine returns a fresh key file line: a kid made of today's date and
// random hex, and 32 random bytes.
func NewKeyLine() (string, error) {
	var id [4]byte
	var key [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	if _, err := rand.Read(key[:]); err != nil {
		return "", err
	}
	kid := time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(id[:])
	return kid + " " + base64.RawURLEncoding.EncodeToString(key[:]), nil
}

// GenerateKeyFile creates path (mode 0600, parent directories 0700) holding
// one fresh key, unless it exists. It reports whether it created the file.
func GenerateKeyFile(path string) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("token keys: %w", err)
	}
	line, err := NewKeyLine()
	if err != nil {
		return false, fmt.Errorf("token keys: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("token keys: %w", err)
	}
	text := "# Kakin access-token signing keys: \"kid base64url-secret\". The first line signs;\n" +
		"# every line verifies. See auth.KeyRing for rotation.\n" + line + "\n"
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		os.Remove(path)
		return false, fmt.Errorf("token keys: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("token keys: %w", err)
	}
	return true, nil
}

// Derive returns a secret for another purpose (label), derived from the
// current signing key, so that every process with the same key file derives
// the same secret. It changes when the signing key rotates.
func (k *KeyRing) Derive(label string) []byte {
	_, secret := k.signing()
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("kakin derive: " + label))
	return mac.Sum(nil)
}
