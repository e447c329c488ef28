package compose

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks what the image promises without a container
// engine: a multi-stage build on the Go of go.mod, a static binary
// (CGO_ENABLED=0), a minimal final stage running as a non-root user, and
// files it copies from the repository present.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(string(mod))
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %d FROM lines", len(froms))
	}
	if goVersion == nil || !strings.HasPrefix(froms[0][1], "golang:"+goVersion[1]+"-") {
		t.Errorf("build stage %s: want golang:%v (go.mod)", froms[0][1], goVersion)
	}
	if final := froms[len(froms)-1][1]; !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage %s: want a distroless static base", final)
	}
	if !regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 .*go build .*\./cmd/kakin$`).MatchString(df) {
		t.Error("the binary is not built with CGO_ENABLED=0 from ./cmd/kakin")
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("the final stage does not run as a non-root user: %v", users)
	}
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--\S+ )*(\S+) `).FindAllStringSubmatch(df, -1) {
		src := m[1]
		if strings.Contains(m[0], "--from=") || src == "." {
			continue
		}
		if _, err := os.Stat("../../" + src); err != nil {
			t.Errorf("COPY %s: %v", src, err)
		}
	}
	if !strings.Contains(df, "KAKIN_HTTP_ADDR=0.0.0.0:8080") {
		t.Error("the image does not listen beyond the container's loopback (KAKIN_HTTP_ADDR)")
	}
}
