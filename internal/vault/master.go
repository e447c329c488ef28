package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MasterKeys are the keys that wrap tenants' data keys. The file has one key
// per line, "kid base64url-secret" (exactly 32 bytes); blank lines and lines
// starting with # are ignored. The first key wraps new data keys; every key
// unwraps. Rotation: put a new key on the first line everywhere, run
// `kakin keys rewrap` (which wraps every data key with it too), then remove
// the old line. Data itself is never re-encrypted.
type MasterKeys struct {
	first string
	keys  map[string]cipher.AEAD
}

// LoadMasterKeys reads a master key file.
func LoadMasterKeys(path string) (*MasterKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master keys: %w", err)
	}
	m, err := ParseMasterKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("master keys %s: %w", path, err)
	}
	return m, nil
}

// ParseMasterKeys reads the text of a master key file.
func ParseMasterKeys(text string) (*MasterKeys, error) {
	m := &MasterKeys{keys: map[string]cipher.AEAD{}}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"kid base64url-secret\"", n+1)
		}
		kid := f[0]
		if len(kid) > 64 {
			return nil, fmt.Errorf("line %d: kid longer than 64 characters", n+1)
		}
		key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(f[1], "="))
		if err != nil {
			return nil, fmt.Errorf("line %d: key %s is not base64url: %w", n+1, kid, err)
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("line %d: key %s has %d bytes, want 32 (AES-256)", n+1, kid, len(key))
		}
		if _, dup := m.keys[kid]; dup {
			return nil, fmt.Errorf("line %d: key id %s listed twice", n+1, kid)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		if m.first == "" {
			m.first = kid
		}
		m.keys[kid] = aead
	}
	if m.first == "" {
		return nil, errors.New("no keys")
	}
	return m, nil
}

// FirstKID is the id of the key that wraps new data keys.
func (m *MasterKeys) FirstKID() string { return m.first }

func (m *MasterKeys) wrap(raw, aad []byte) (kid string, wrapped []byte, err error) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, err
	}
	return m.first, m.keys[m.first].Seal(nonce, nonce, raw, aad), nil
}

func (m *MasterKeys) unwrap(kid string, wrapped, aad []byte) ([]byte, error) {
	aead, ok := m.keys[kid]
	if !ok {
		return nil, fmt.Errorf("master key %s is not in the master key file", kid)
	}
	if len(wrapped) < 12 {
		return nil, errors.New("wrapped key too short")
	}
	raw, err := aead.Open(nil, wrapped[:12], wrapped[12:], aad)
	if err != nil {
		return nil, fmt.Errorf("unwrap with master key %s: %w", kid, err)
	}
	return raw, nil
}

// NewMasterKeyLine returns a fresh master key file line.
func NewMasterKeyLine() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	kid := "mk-" + time.Now().UTC().Format("20060102") + "-" + randomHex(4)
	return kid + " " + base64.RawURLEncoding.EncodeToString(key), nil
}

// GenerateMasterKeyFile creates path (mode 0600, parent directories 0700)
// with one fresh key, unless it exists. It reports whether it created it.
func GenerateMasterKeyFile(path string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("master keys: %w", err)
	}
	line, err := NewMasterKeyLine()
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("master keys: %w", err)
	}
	text := "# Kakin master keys: \"kid base64url-secret\" (32 bytes). They wrap each tenant's data key\n" +
		"# for personal fields. The first line wraps; every line unwraps. Losing every key listed\n" +
		"# here makes customers' personal fields unreadable: back this file up.\n" + line + "\n"
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		os.Remove(path)
		return false, fmt.Errorf("master keys: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("master keys: %w", err)
	}
	return true, nil
}
