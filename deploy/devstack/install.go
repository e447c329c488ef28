package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binSearchDirs are searched after $PATH: Debian installs clickhouse-server
// in /usr/sbin, which is often not on a non-root user's PATH.
var binSearchDirs = []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"}

// findBinary locates an executable by name on $PATH, then in binSearchDirs.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range binSearchDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in $PATH or %s", name, strings.Join(binSearchDirs, ", "))
}

// aptPackages maps each binary the stack needs to the Debian package that
// provides it.
var aptPackages = []struct{ bin, pkg string }{
	{"redis-server", "redis-server"},
	{"clickhouse-server", "clickhouse-server"},
}

// EnsureInstalled installs redis-server and clickhouse-server with apt-get
// when missing (runs `apt-get update` once first). Logs what it does.
func EnsureInstalled(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var missing []string
	for _, p := range aptPackages {
		if path, err := findBinary(p.bin); err == nil {
			log.Debug("dependency present", "binary", p.bin, "path", path)
			continue
		}
		missing = append(missing, p.pkg)
	}
	if len(missing) == 0 {
		log.Info("redis-server and clickhouse-server already installed")
		return nil
	}
	aptGet, err := findBinary("apt-get")
	if err != nil {
		return fmt.Errorf("install %s: %w", strings.Join(missing, " "), err)
	}
	log.Info("installing missing packages with apt-get", "packages", missing)
	if err := runApt(ctx, log, aptGet, "update"); err != nil {
		return fmt.Errorf("install %s: %w", strings.Join(missing, " "), err)
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
	if err := runApt(ctx, log, aptGet, args...); err != nil {
		return fmt.Errorf("install %s: %w", strings.Join(missing, " "), err)
	}
	for _, p := range aptPackages {
		path, err := findBinary(p.bin)
		if err != nil {
			return fmt.Errorf("install %s: still missing after apt-get: %w", p.pkg, err)
		}
		log.Info("dependency installed", "binary", p.bin, "path", path)
	}
	return nil
}

func runApt(ctx context.Context, log *slog.Logger, aptGet string, args ...string) error {
	log.Info("running apt-get", "args", args)
	cmd := exec.CommandContext(ctx, aptGet, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tailBytes(out, 2048))
	}
	return nil
}
