package openapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// openapiYAML is the OpenAPI 3.0 document of Kakin's HTTP API: the contract
// the handlers follow and the e2e tests check responses against
// (internal/apitest).
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPIYAML returns the document as written (YAML).
func OpenAPIYAML() []byte { return slices.Clone(openapiYAML) }

// OpenAPI loads and validates the API document. Every call returns a new
// copy that the caller may change.
func OpenAPI() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.Context = context.Background()
	doc, err := loader.LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
}

var openapiJSON = sync.OnceValues(func() ([]byte, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
})

// OpenAPIJSON returns the API document as JSON.
func OpenAPIJSON() ([]byte, error) {
	b, err := openapiJSON()
	return slices.Clone(b), err
}

// OpenAPIHandler serves the API document as JSON (GET /openapi.json).
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := openapiJSON()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})
}

// DocsHandler serves a self-contained HTML reference of the API (GET /docs),
// rendered on the server from the document: no script, no external assets.
func DocsHandler() http.Handler {
	page := sync.OnceValues(renderDocs)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := page()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})
}

// ---- the reference page ----

type docsPage struct {
	Title, Version string
	Description    template.HTML
	Tags           []docsTag
	Schemas        []docsSchema
}

type docsTag struct {
	Name        string
	Description string
	Ops         []docsOp
}

type docsOp struct {
	Anchor, Method, Path, ID, Summary string
	Description                       template.HTML
	Security                          string
	Params                            []docsField
	Body                              []docsContent
	BodyRequired                      bool
	Responses                         []docsResponse
}

type docsField struct {
	Name, In, Type string
	Description    template.HTML
	Required       bool
}

type docsContent struct {
	MediaType string
	Schemas   []docsSchemaName
}

// docsSchemaName names a body schema; Link when it is a component.
type docsSchemaName struct {
	Name string
	Link bool
}

type docsResponse struct {
	Status      string
	Description template.HTML
	Headers     []docsField
	Content     []docsContent
}

type docsSchema struct {
	Name, Type  string
	Description template.HTML
	Fields      []docsField
}

func renderDocs() ([]byte, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	p := docsPage{Title: doc.Info.Title, Version: doc.Info.Version, Description: richText(doc.Info.Description)}
	tagIndex := map[string]int{}
	for _, t := range doc.Tags {
		tagIndex[t.Name] = len(p.Tags)
		p.Tags = append(p.Tags, docsTag{Name: t.Name, Description: t.Description})
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			i, ok := tagIndex[tag]
			if !ok {
				i = len(p.Tags)
				tagIndex[tag] = i
				p.Tags = append(p.Tags, docsTag{Name: tag})
			}
			p.Tags[i].Ops = append(p.Tags[i].Ops, docsOperation(doc, method, path, item, op))
		}
	}
	for _, t := range p.Tags {
		slices.SortStableFunc(t.Ops, func(a, b docsOp) int { return strings.Compare(a.Path, b.Path) })
	}
	names := make([]string, 0, len(doc.Components.Schemas))
	for name := range doc.Components.Schemas {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := doc.Components.Schemas[name].Value
		ds := docsSchema{Name: name, Type: schemaType(doc.Components.Schemas[name]), Description: richText(s.Description)}
		for _, prop := range sortedKeys(s.Properties) {
			ref := s.Properties[prop]
			ds.Fields = append(ds.Fields, docsField{Name: prop, Type: schemaType(ref),
				Required: slices.Contains(s.Required, prop), Description: richText(ref.Value.Description)})
		}
		p.Schemas = append(p.Schemas, ds)
	}
	var buf bytes.Buffer
	if err := docsTemplate.Execute(&buf, p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func docsOperation(doc *openapi3.T, method, path string, item *openapi3.PathItem, op *openapi3.Operation) docsOp {
	o := docsOp{Anchor: op.OperationID, Method: method, Path: path, ID: op.OperationID,
		Summary: op.Summary, Description: richText(op.Description)}
	security := doc.Security
	if op.Security != nil {
		security = *op.Security
	}
	var alts []string
	for _, req := range security {
		var parts []string
		for _, name := range sortedKeys(req) {
			if scopes := req[name]; len(scopes) > 0 {
				parts = append(parts, name+" ("+strings.Join(scopes, ", ")+")")
			} else {
				parts = append(parts, name)
			}
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		alts = append(alts, strings.Join(parts, " and "))
	}
	o.Security = strings.Join(alts, " or ")
	if o.Security == "" {
		o.Security = "none"
	}
	for _, params := range []openapi3.Parameters{item.Parameters, op.Parameters} {
		for _, ref := range params {
			prm := ref.Value
			o.Params = append(o.Params, docsField{Name: prm.Name, In: prm.In, Required: prm.Required,
				Type: schemaType(prm.Schema), Description: richText(prm.Description)})
		}
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		o.BodyRequired = op.RequestBody.Value.Required
		o.Body = docsContents(op.RequestBody.Value.Content)
	}
	statuses := make([]string, 0, op.Responses.Len())
	for status := range op.Responses.Map() {
		statuses = append(statuses, status)
	}
	slices.Sort(statuses)
	for _, status := range statuses {
		r := op.Responses.Value(status).Value
		dr := docsResponse{Status: status, Content: docsContents(r.Content)}
		if r.Description != nil {
			dr.Description = richText(*r.Description)
		}
		for _, h := range sortedKeys(r.Headers) {
			hv := r.Headers[h].Value
			dr.Headers = append(dr.Headers, docsField{Name: h, Required: hv.Required, Type: schemaType(hv.Schema)})
		}
		o.Responses = append(o.Responses, dr)
	}
	return o
}

func docsContents(c openapi3.Content) []docsContent {
	var out []docsContent
	for _, mt := range sortedKeys(c) {
		dc := docsContent{MediaType: mt}
		ref := c[mt].Schema
		switch {
		case ref == nil:
		case ref.Ref != "":
			dc.Schemas = []docsSchemaName{{Name: schemaType(ref), Link: true}}
		case ref.Value != nil && len(ref.Value.OneOf) > 0:
			for _, alt := range ref.Value.OneOf {
				dc.Schemas = append(dc.Schemas, docsSchemaName{Name: schemaType(alt), Link: alt.Ref != ""})
			}
		default:
			dc.Schemas = []docsSchemaName{{Name: schemaType(ref)}}
		}
		out = append(out, dc)
	}
	return out
}

// schemaType names a schema briefly: its component name, or its type.
func schemaType(ref *openapi3.SchemaRef) string {
	if ref == nil {
		return ""
	}
	if ref.Ref != "" {
		return ref.Ref[strings.LastIndex(ref.Ref, "/")+1:]
	}
	s := ref.Value
	if s == nil {
		return ""
	}
	switch {
	case len(s.OneOf) > 0:
		return joinTypes(s.OneOf, " | ")
	case len(s.AnyOf) > 0:
		return joinTypes(s.AnyOf, " | ")
	case len(s.AllOf) > 0:
		return joinTypes(s.AllOf, " & ")
	}
	var t string
	if s.Type != nil && len(*s.Type) > 0 {
		t = strings.Join(*s.Type, "|")
	}
	switch {
	case t == "array" && s.Items != nil:
		t = schemaType(s.Items) + "[]"
	case t == "object" && s.AdditionalProperties.Schema != nil && len(s.Properties) == 0:
		t = "map of " + schemaType(s.AdditionalProperties.Schema)
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = fmt.Sprint(v)
		}
		t += ": " + strings.Join(vals, ", ")
	}
	return t
}

func joinTypes(refs openapi3.SchemaRefs, sep string) string {
	parts := make([]string, len(refs))
	for i, r := range refs {
		parts[i] = schemaType(r)
	}
	return strings.Join(parts, sep)
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// richText renders the little Markdown the document uses: paragraphs,
// `code` and **bold**. Everything else is escaped text.
func richText(s string) template.HTML {
	var b strings.Builder
	for _, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		para = strings.TrimSpace(para)
		if para == "" {
			continue
		}
		b.WriteString("<p>")
		code, bold := false, false
		for i := 0; i < len(para); i++ {
			switch {
			case para[i] == '`':
				if code {
					b.WriteString("</code>")
				} else {
					b.WriteString("<code>")
				}
				code = !code
			case !code && strings.HasPrefix(para[i:], "**"):
				if bold {
					b.WriteString("</strong>")
				} else {
					b.WriteString("<strong>")
				}
				bold = !bold
				i++
			default:
				j := i
				for j < len(para) && para[j] != '`' && !(!code && strings.HasPrefix(para[j:], "**")) {
					j++
				}
				b.WriteString(template.HTMLEscapeString(para[i:j]))
				i = j - 1
			}
		}
		if code {
			b.WriteString("</code>")
		}
		if bold {
			b.WriteString("</strong>")
		}
		b.WriteString("</p>\n")
	}
	return template.HTML(b.String())
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
main{max-width:1000px;margin:0 auto;padding:1.5rem}
nav{background:#1d2330;color:#fff;padding:.8rem 1.5rem}
nav a{color:#cfe0ff;margin-right:1rem;text-decoration:none}
h1{margin:.2rem 0}h2{border-bottom:2px solid #dde2ea;padding-bottom:.2rem;margin-top:2.5rem}
code{font:13px ui-monospace,monospace;background:#eef1f5;padding:0 .25rem;border-radius:3px}
section.op{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.method{display:inline-block;min-width:3.5rem;text-align:center;font-weight:700;border-radius:4px;padding:0 .4rem;color:#fff;background:#4a6fa5}
.POST{background:#3d8b5a}.DELETE{background:#b5473a}.PUT,.PATCH{background:#a5782a}
.path{font:600 15px ui-monospace,monospace}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{text-align:left;border-bottom:1px solid #eceff3;padding:.25rem .4rem;vertical-align:top;font-size:14px}
th{color:#5a6475;font-weight:600}
.req{color:#b5473a;font-size:12px}
.muted{color:#5a6475}
h4{margin:.8rem 0 .2rem}
</style>
</head>
<body>
<nav><strong>{{.Title}}</strong> <span class="muted">{{.Version}}</span> &nbsp;
{{range .Tags}}<a href="#tag-{{.Name}}">{{.Name}}</a>{{end}}<a href="#schemas">schemas</a><a href="/openapi.json">openapi.json</a></nav>
<main>
<h1>{{.Title}}</h1>
{{.Description}}
{{range .Tags}}
<h2 id="tag-{{.Name}}">{{.Name}}</h2>
{{if .Description}}<p class="muted">{{.Description}}</p>{{end}}
{{range .Ops}}
<section class="op" id="{{.Anchor}}">
<div><span class="method {{.Method}}">{{.Method}}</span> <span class="path">{{.Path}}</span> <span class="muted">— {{.Summary}}</span></div>
<div class="muted">operationId <code>{{.ID}}</code> · auth: {{.Security}}</div>
{{.Description}}
{{if .Params}}<h4>Parameters</h4>
<table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>
{{range .Params}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">required</span>{{end}}</td><td>{{.In}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{end}}
{{if .Body}}<h4>Request body{{if .BodyRequired}} <span class="req">required</span>{{end}}</h4>
<table>{{range .Body}}<tr><td><code>{{.MediaType}}</code></td><td>{{template "schemas" .Schemas}}</td></tr>{{end}}</table>{{end}}
<h4>Responses</h4>
<table><tr><th>status</th><th>description</th><th>body</th><th>headers</th></tr>
{{range .Responses}}<tr><td><strong>{{.Status}}</strong></td><td>{{.Description}}</td>
<td>{{range .Content}}<code>{{.MediaType}}</code> {{template "schemas" .Schemas}}<br>{{end}}</td>
<td>{{range .Headers}}<code>{{.Name}}</code>{{if .Required}}<span class="req">*</span>{{end}} {{end}}</td></tr>
{{end}}</table>
</section>
{{end}}{{end}}
<h2 id="schemas">Schemas</h2>
{{range .Schemas}}
<section class="op" id="schema-{{.Name}}">
<div><span class="path">{{.Name}}</span> <span class="muted">{{.Type}}</span></div>
{{.Description}}
{{if .Fields}}<table><tr><th>field</th><th>type</th><th>description</th></tr>
{{range .Fields}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">required</span>{{end}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{end}}
</section>
{{end}}
</main>
</body>
</html>
{{define "schemas"}}{{range $i, $s := .}}{{if $i}} or {{end}}{{if $s.Link}}<a href="#schema-{{$s.Name}}">{{$s.Name}}</a>{{else}}{{$s.Name}}{{end}}{{end}}{{end}}
`))
