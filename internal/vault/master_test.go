package vault

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMasterKeys(t *testing.T) {
	a, _ := NewMasterKeyLine()
	b, _ := NewMasterKeyLine()
	both, err := ParseMasterKeys("# comment\n\n" + a + "\n" + b + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if both.FirstKID() != strings.Fields(a)[0] {
		t.Errorf("first kid %s", both.FirstKID())
	}
	raw := bytes.Repeat([]byte{7}, 32)
	kid, wrapped, err := both.wrap(raw, []byte("aad"))
	if err != nil || kid != both.FirstKID() || bytes.Contains(wrapped, raw) {
		t.Fatalf("wrap: %s %v", kid, err)
	}
	if got, err := both.unwrap(kid, wrapped, []byte("aad")); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := both.unwrap(kid, wrapped, []byte("other aad")); err == nil {
		t.Error("unwrapped with other additional data")
	}
	onlyB, _ := ParseMasterKeys(b)
	if _, err := onlyB.unwrap(kid, wrapped, []byte("aad")); err == nil || !strings.Contains(err.Error(), "not in the master key file") {
		t.Errorf("unwrap without the key: %v", err)
	}
	for _, bad := range []string{"", "# only a comment", "kid", "kid !!!", "kid c2hvcnQ", a + "\n" + a} {
		if _, err := ParseMasterKeys(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestGenerateMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master-key")
	created, err := GenerateMasterKeyFile(path)
	if err != nil || !created {
		t.Fatalf("created %v, %v", created, err)
	}
	first, _ := os.ReadFile(path)
	if created, err := GenerateMasterKeyFile(path); err != nil || created {
		t.Fatalf("second call created %v, %v", created, err)
	}
	again, _ := os.ReadFile(path)
	if !bytes.Equal(first, again) {
		t.Error("an existing key file was replaced")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if _, err := LoadMasterKeys(path); err != nil {
		t.Fatal(err)
	}
}
