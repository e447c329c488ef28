package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kakin-dev/kakin/internal/auth"
	"github.com/kakin-dev/kakin/internal/clock"
	"github.com/kakin-dev/kakin/internal/httpapi"
	"github.com/kakin-dev/kakin/internal/jobs"
	"github.com/kakin-dev/kakin/internal/tenant"
)

// Uploads serves POST /v1/usage/imports.
type Uploads struct {
	c     Config
	store *jobs.Store
	wake  func() // tells the job runner there is work
}

// NewUploads returns the upload handler; wake (may be nil) is called after a
// job was created.
func NewUploads(c Config, store *jobs.Store, wake func()) *Uploads {
	c.defaults()
	if wake == nil {
		wake = func() {}
	}
	return &Uploads{c: c, store: store, wake: wake}
}

// Accepted is the body of a 202 answer: the job, plus the size received and
// the status URL under the names of the usage upload this API follows.
type Accepted struct {
	Size              int64     `json:"size"`
	CheckImportStatus string    `json:"checkImportStatus"`
	Job               jobs.View `json:"job"`
}

// UploadTimeout is the longest an upload may take (the server's read
// timeout is lifted to it for this route).
const UploadTimeout = time.Hour

// multipartSlack is what a multipart body may carry beyond the file: part
// headers, boundaries and small fields.
const multipartSlack = 64 << 10

func (u *Uploads) refuse(w http.ResponseWriter, status int, code, detail string, errs ...httpapi.FieldError) {
	u.c.Metrics.uploads.WithLabelValues(code).Inc()
	httpapi.WriteProblem(w, status, code, detail, errs...)
}

func formatOf(mediaType, filename string) string {
	switch mediaType {
	case "text/csv":
		return FormatCSV
	case "application/x-ndjson", "application/jsonl", "application/ndjson":
		return FormatNDJSON
	}
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".csv":
		return FormatCSV
	case ".ndjson", ".jsonl":
		return FormatNDJSON
	}
	return ""
}

// bodyFilename is the file name a bare-body upload gives in its
// Content-Disposition header (`attachment; filename="usage.csv"`, the form a
// multipart part names its file with, RFC 7578 §4.2); "" without one.
func bodyFilename(header string) string {
	if header == "" {
		return ""
	}
	_, ps, err := mime.ParseMediaType(header)
	if err != nil {
		return ""
	}
	return cleanFilename(ps["filename"])
}

// cleanFilename keeps the last element of a client's file name (never a
// path), and nothing for an empty or overlong one.
func cleanFilename(name string) string {
	if name == "" {
		return ""
	}
	name = filepath.Base(name)
	if len(name) > 255 || name == "." || name == "/" {
		return ""
	}
	return name
}

func validMode(m string) bool { return m == ModePartial || m == ModeAtomic }

// ServeHTTP spools the upload, checks its header, creates the job and
// answers 202 with Location: /v1/jobs/{id}.
func (u *Uploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ten, ok := tenant.From(r.Context())
	if !ok {
		httpapi.WriteProblem(w, http.StatusUnauthorized, "unauthenticated", "no tenant for this request")
		return
	}
	p, _ := auth.FromContext(r.Context())
	q := r.URL.Query()
	errs := httpapi.UnknownQuery(q, "mode")
	mode := q.Get("mode")
	if mode == "" {
		mode = ModePartial
	}
	if !validMode(mode) {
		errs = append(errs, httpapi.FieldError{Field: "mode", Reason: "must be atomic or partial"})
	}
	if len(errs) > 0 {
		u.refuse(w, http.StatusBadRequest, "invalid_query", "the query parameters are invalid", errs...)
		return
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	id := jobs.NewID()
	params := Params{Mode: mode, ReceivedAt: clock.Now().UTC()}
	limit := u.c.MaxBytes
	if mediaType == "multipart/form-data" {
		limit += multipartSlack
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	// A large file takes longer than the server's usual read timeout.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(UploadTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(UploadTimeout + time.Minute))

	var spooled *spoolFile
	var err error
	switch mediaType {
	case "multipart/form-data":
		r.Body = body
		mr, merr := r.MultipartReader()
		if merr != nil {
			u.refuse(w, http.StatusBadRequest, "malformed_body", "not a multipart body: "+merr.Error())
			return
		}
		spooled, params, err = u.readMultipart(mr, ten, id, params)
	default:
		params.Format = formatOf(mediaType, "")
		if params.Format == "" {
			u.refuse(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
				"send text/csv, application/x-ndjson, or multipart/form-data with the file in field \"file\"")
			return
		}
		params.Filename = bodyFilename(r.Header.Get("Content-Disposition"))
		spooled, err = u.spool(body, ten, id, params.Format)
	}
	if spooled != nil {
		defer spooled.discard() // unless kept below
	}
	var tooBig *http.MaxBytesError
	var bad badUpload
	switch {
	case errors.As(err, &tooBig):
		u.refuse(w, http.StatusRequestEntityTooLarge, "file_too_large",
			fmt.Sprintf("the file is larger than the import limit of %d bytes; split it into several imports", u.c.MaxBytes))
		return
	case errors.As(err, &bad):
		u.refuse(w, bad.status, bad.code, bad.detail, bad.errs...)
		return
	case err != nil:
		u.c.Log.Error("imports: spooling failed", "tenant", ten, "request_id", httpapi.RequestID(r.Context()), "err", err)
		httpapi.RetryAfter(w, 5*time.Second)
		u.refuse(w, http.StatusServiceUnavailable, "storage_unavailable", "the upload could not be stored; retry it")
		return
	}
	params.Size = spooled.size
	if mode := params.Mode; !validMode(mode) {
		u.refuse(w, http.StatusBadRequest, "invalid_form", "the form is invalid",
			httpapi.FieldError{Field: "mode", Reason: "must be atomic or partial"})
		return
	}
	records := spooled.counter.count()
	if params.Format == FormatCSV && records > 0 {
		if errs := checkSpooledHeader(spooled.path); len(errs) > 0 {
			u.refuse(w, http.StatusBadRequest, "invalid_header", "the CSV header row is invalid", errs...)
			return
		}
		records-- // the header
	}
	if records == 0 {
		u.refuse(w, http.StatusBadRequest, "empty_file", "the file has no records")
		return
	}
	cp := checkpoint{Phase: phasePublish, Client: p.ClientID, Limits: p.Limits}
	if params.Mode == ModeAtomic {
		cp.Phase = phaseValidate
	}
	pj, _ := json.Marshal(params)
	cj, _ := json.Marshal(cp)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 15*time.Second)
	defer cancel()
	j, err := u.store.Create(ctx, jobs.Job{Tenant: ten, ID: id, Kind: Kind, Params: pj, Checkpoint: cj,
		CreatedBy: p.ClientID, Counts: jobs.Counts{Total: records}})
	if err != nil {
		u.c.Log.Error("imports: job not created", "tenant", ten, "request_id", httpapi.RequestID(r.Context()), "err", err)
		httpapi.RetryAfter(w, 5*time.Second)
		u.refuse(w, http.StatusServiceUnavailable, "storage_unavailable", "the import job could not be created; retry the upload")
		return
	}
	spooled.keep()
	u.c.Metrics.uploads.WithLabelValues("accepted").Inc()
	u.c.Metrics.uploadBytes.Add(float64(spooled.size))
	u.wake()
	w.Header().Set("Location", jobs.Path(id))
	httpapi.WriteJSON(w, http.StatusAccepted, Accepted{Size: spooled.size, CheckImportStatus: jobs.Path(id), Job: jobs.NewView(j, false)})
}

// badUpload is a refusal decided while reading the body.
type badUpload struct {
	status int
	code   string
	detail string
	errs   []httpapi.FieldError
}

func (b badUpload) Error() string { return b.code + ": " + b.detail }

// readMultipart spools the part named "file" and reads the small fields
// "mode" and "format", in any order.
func (u *Uploads) readMultipart(mr *multipart.Reader, ten, id string, params Params) (*spoolFile, Params, error) {
	var spooled *spoolFile
	queryMode := params.Mode
	formMode := ""
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return spooled, params, u.bodyError(err)
		}
		switch part.FormName() {
		case "file":
			if spooled != nil {
				part.Close()
				return spooled, params, badUpload{status: http.StatusBadRequest, code: "invalid_form", detail: "the form has more than one file"}
			}
			if params.Format == "" {
				mt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
				params.Format = formatOf(mt, part.FileName())
			}
			if params.Format == "" {
				part.Close()
				return nil, params, badUpload{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
					detail: "the file must be CSV (text/csv or *.csv) or NDJSON (application/x-ndjson or *.ndjson); or name it with the form field format"}
			}
			params.Filename = cleanFilename(part.FileName())
			spooled, err = u.spool(part, ten, id, params.Format)
			if err != nil {
				return spooled, params, err
			}
		case "mode", "format":
			b, err := io.ReadAll(io.LimitReader(part, 64))
			if err != nil {
				return spooled, params, u.bodyError(err)
			}
			v := strings.TrimSpace(string(b))
			if part.FormName() == "mode" {
				formMode = v
			} else if spooled == nil {
				switch v {
				case FormatCSV, FormatNDJSON:
					params.Format = v
				default:
					return spooled, params, badUpload{status: http.StatusBadRequest, code: "invalid_form", detail: "the form is invalid",
						errs: []httpapi.FieldError{{Field: "format", Reason: "must be csv or ndjson"}}}
				}
			}
		default:
			_, _ = io.Copy(io.Discard, part)
		}
		part.Close()
	}
	if spooled == nil {
		return nil, params, badUpload{status: http.StatusBadRequest, code: "invalid_form", detail: `the form has no field "file"`}
	}
	if formMode != "" {
		if queryMode != ModePartial && formMode != queryMode {
			return spooled, params, badUpload{status: http.StatusBadRequest, code: "invalid_form", detail: "the form is invalid",
				errs: []httpapi.FieldError{{Field: "mode", Reason: "the form and the query name different modes"}}}
		}
		params.Mode = formMode
	}
	return spooled, params, nil
}

func (u *Uploads) bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return badUpload{status: http.StatusBadRequest, code: "malformed_body", detail: "could not read the multipart body: " + err.Error()}
}

// spoolFile is an upload on disk.
type spoolFile struct {
	path    string
	size    int64
	counter recordCounter
	kept    bool
}

func (s *spoolFile) keep() { s.kept = true }

func (s *spoolFile) discard() {
	if !s.kept {
		_ = os.Remove(s.path)
	}
}

// spool copies src to <dir>/<tenant>/<id>.<format>, counting its lines,
// and syncs it: once the job row exists, the file must survive a crash.
func (u *Uploads) spool(src io.Reader, ten, id, format string) (*spoolFile, error) {
	path := spoolPath(u.c.Dir, ten, id, format)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("import dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	s := &spoolFile{path: path}
	n, err := io.Copy(io.MultiWriter(f, &s.counter), src)
	s.size = n
	if err != nil {
		f.Close()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s, err
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "multipart") {
			return s, badUpload{status: http.StatusBadRequest, code: "malformed_body", detail: "the upload ended early: " + err.Error()}
		}
		return s, fmt.Errorf("spool %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return s, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return s, fmt.Errorf("close %s: %w", path, err)
	}
	return s, nil
}

// checkSpooledHeader checks the header row of a spooled CSV file.
func checkSpooledHeader(path string) []httpapi.FieldError {
	f, err := os.Open(path)
	if err != nil {
		return []httpapi.FieldError{{Field: "header", Reason: "unreadable: " + err.Error()}}
	}
	defer f.Close()
	line, err := newLineReader(f, 0, 0).next()
	if errors.Is(err, errLineTooLong) {
		return []httpapi.FieldError{{Field: "header", Reason: err.Error()}}
	}
	if err != nil {
		return []httpapi.FieldError{{Field: "header", Reason: "missing"}}
	}
	_, errs := parseHeader(line)
	return errs
}
