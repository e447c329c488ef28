package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/internal/clock"
)

// importAPI stands in for the two routes `kakin usage send` talks to: the
// upload (answered once the whole body is read, as the real one) and the
// job, which goes through the given states, the last one repeated.
func importAPI(t *testing.T, uploaded jobView, states []jobView) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	polls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/usage/imports", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"size": n, "checkImportStatus": "/v1/jobs/" + uploaded.ID, "job": uploaded})
	})
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		j := states[min(polls, len(states)-1)]
		polls++
		mu.Unlock()
		json.NewEncoder(w).Encode(j)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// The progress line (the upload bar, then the job's progress) is finished —
// drawn a last time and ended with a newline — before the result line, and
// before an error the caller prints, with stdout and stderr going to one
// terminal.
func TestUsageSendFinishesProgressBeforeTheResult(t *testing.T) {
	job := func(status string, processed uint64) jobView {
		return jobView{ID: "job_t", Kind: "usage_import", Status: status, Total: 3, Processed: processed, Accepted: processed}
	}
	tests := []struct {
		name     string
		uploaded jobView
		states   []jobView
		args     []string
		want     string // the line after the progress: the result, or the error
		wantErr  bool
		bar      bool // the upload bar is drawn
	}{
		{name: "job followed to its end", uploaded: job("pending", 0),
			states: []jobView{job("processing", 1), job("processing", 2), job("completed", 3)},
			want:   "job job_t completed: 3 records, 3 accepted, 0 rejected", bar: true},
		{name: "job ended before the upload was answered", uploaded: job("completed", 3),
			want: "job job_t completed: 3 records, 3 accepted, 0 rejected", bar: true},
		{name: "stopped waiting for the job", uploaded: job("pending", 0), states: []jobView{job("processing", 1)},
			// One poll draws the job's progress, the wait for the next
			// one ends: the error follows a drawn progress line.
			args: []string{"--poll", "300ms", "--timeout", "450ms"}, want: "kakin usage: stopped waiting for job job_t", wantErr: true, bar: true},
		{name: "quiet", uploaded: job("pending", 0), states: []jobView{job("processing", 1), job("completed", 3)},
			args: []string{"--quiet"}, want: "job job_t completed: 3 records, 3 accepted, 0 rejected"},
	}
	file := filepath.Join(t.TempDir(), "usage.csv")
	at := clock.Now().UTC().Format(time.RFC3339)
	csv := "id,customer,element,quantity,time\n" + strings.Repeat("e-1,c-1,api_calls,1,"+at+"\n", 3)
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := importAPI(t, tt.uploaded, tt.states)
			var term syncBuffer // stdout and stderr on one terminal
			args := append([]string{"-f", file, "--url", srv.URL, "--tenant", "t1", "--poll", "1ms"}, tt.args...)
			err := runUsageSend(context.Background(), args, &term, &term)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				io.WriteString(&term, "kakin usage: "+err.Error()+"\n") // as main prints it
			}
			out := term.String()
			i := strings.Index(out, tt.want)
			if i < 0 {
				t.Fatalf("output lacks %q:\n%q", tt.want, out)
			}
			before := out[:i]
			if before != "" && !strings.HasSuffix(before, "\n") {
				t.Errorf("%q does not start a line of its own:\n%q", tt.want, out)
			}
			// What a terminal shows of each line is its last redraw: a
			// progress line is only ever progress, never progress with a
			// message written over or after it.
			lastBar := ""
			for _, line := range strings.Split(strings.TrimSuffix(before, "\n"), "\n") {
				if !strings.Contains(line, "\r") {
					continue
				}
				shown := line[strings.LastIndex(line, "\r")+1:]
				if !strings.HasPrefix(shown, "upload usage.csv [") && !strings.HasPrefix(shown, "job_t ") {
					t.Errorf("progress line ends in %q, not in a progress redraw:\n%q", shown, out)
				}
				if strings.HasPrefix(shown, "upload ") {
					lastBar = shown
				}
			}
			if tt.bar && !strings.Contains(lastBar, "100.0%") {
				t.Errorf("the upload bar's last redraw %q does not show every byte sent:\n%q", lastBar, out)
			}
			if !tt.bar && strings.Contains(out, "\r") {
				t.Errorf("--quiet drew progress:\n%q", out)
			}
			if strings.Contains(before, "\n\n") {
				t.Errorf("an empty line in the output:\n%q", out)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
