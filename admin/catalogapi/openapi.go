package catalogapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/kakin-dev/kakin/catalog"
)

// The catalogue's part of schemas/openapi/openapi.yaml is generated from
// Routes and from the catalogue file's JSON Schema, between marker lines
// "# BEGIN GENERATED catalogue <block>" and "# END GENERATED catalogue
// <block>". TestOpenAPIDocumentIsCurrent fails when the document differs;
// `go test ./admin/catalogapi -run TestOpenAPIDocumentIsCurrent -update`
// rewrites it.

// Blocks are the generated blocks of the document, by name.
func (a *API) OpenAPIBlocks() (map[string]string, error) {
	defs, err := schemaDefinitions()
	if err != nil {
		return nil, err
	}
	routes := a.Routes()
	return map[string]string{
		"tags":       tagsBlock(),
		"paths":      pathsBlock(routes),
		"parameters": parametersBlock(),
		"headers":    headersBlock(),
		"responses":  responsesBlock(),
		"schemas":    schemasBlock(defs),
	}, nil
}

// ReplaceBlocks puts the blocks into a document between their markers.
func ReplaceBlocks(doc string, blocks map[string]string) (string, error) {
	names := make([]string, 0, len(blocks))
	for n := range blocks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		begin, end := "# BEGIN GENERATED catalogue "+name+"\n", "# END GENERATED catalogue "+name+"\n"
		i := strings.Index(doc, begin)
		j := strings.Index(doc, end)
		if i < 0 || j < i {
			return "", fmt.Errorf("openapi.yaml has no %q ... %q markers", strings.TrimSpace(begin), strings.TrimSpace(end))
		}
		// The end marker is indented like the begin marker.
		lineStart := strings.LastIndex(doc[:j], "\n") + 1
		doc = doc[:i+len(begin)] + blocks[name] + doc[lineStart:]
	}
	return doc, nil
}

// ---- a small YAML writer ----

type yw struct{ b strings.Builder }

func (w *yw) line(indent int, s string) {
	w.b.WriteString(strings.Repeat(" ", indent))
	w.b.WriteString(s)
	w.b.WriteByte('\n')
}

// text writes key: followed by a literal block of s.
func (w *yw) text(indent int, key, s string) {
	w.line(indent, key+": |")
	for _, l := range wrap(s, 76) {
		w.line(indent+2, l)
	}
}

func wrap(s string, width int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		words := strings.Fields(para)
		cur := ""
		for _, word := range words {
			if cur != "" && len(cur)+1+len(word) > width {
				out = append(out, cur)
				cur = ""
			}
			if cur != "" {
				cur += " "
			}
			cur += word
		}
		out = append(out, cur)
	}
	return out
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func refTo(kind, name string) string { return "$ref: '#/components/" + kind + "/" + name + "'" }

// ---- blocks ----

func tagsBlock() string {
	var w yw
	for _, t := range [][2]string{
		{"customers", "customers (顧客) and groups of customers (グループ); personal fields are stored encrypted"},
		{"contracts", "basic (基本契約), service/price (サービス契約／料金契約) and discount (割引契約) contracts"},
		{"masters", "the price catalogue's masters: service, price plan, fee, calculation element, rate table, discount table; effective-dated versions"},
	} {
		w.line(2, "- name: "+t[0])
		w.line(4, "description: "+quote(t[1]))
	}
	return w.b.String()
}

func pathsBlock(routes []Route) string {
	var w yw
	var order []string
	byPath := map[string][]Route{}
	for _, r := range routes {
		if _, seen := byPath[r.Path]; !seen {
			order = append(order, r.Path)
		}
		byPath[r.Path] = append(byPath[r.Path], r)
	}
	for _, p := range order {
		w.line(2, p+":")
		for _, r := range byPath[p] {
			writeOperation(&w, r)
		}
		w.line(0, "")
	}
	return w.b.String()
}

func writeOperation(w *yw, r Route) {
	w.line(4, strings.ToLower(r.Method)+":")
	w.line(6, "tags: ["+r.Tag+"]")
	w.line(6, "operationId: "+r.OperationID)
	w.line(6, "summary: "+quote(r.Summary))
	if r.Description != "" {
		w.text(6, "description", r.Description)
	}
	w.line(6, "security:")
	w.line(8, "- oauth2: ['"+string(r.Scope)+"']")
	w.line(6, "parameters:")
	w.line(8, "- "+refTo("parameters", "KakinVersion"))
	w.line(8, "- "+refTo("parameters", "RequestIdHeader"))
	if r.Write {
		w.line(8, "- "+refTo("parameters", "IdempotencyKey"))
	}
	if r.ifMatch > 0 {
		w.line(8, "- "+refTo("parameters", "IfMatch"))
	}
	writeParams := func(in string, ps []param) {
		for _, p := range ps {
			switch p.name {
			case "pageSize":
				w.line(8, "- "+refTo("parameters", "PageSize"))
				continue
			case "nextPage":
				w.line(8, "- "+refTo("parameters", "NextPage"))
				continue
			}
			w.line(8, "- name: "+p.name)
			w.line(10, "in: "+in)
			w.line(10, "required: "+strconv.FormatBool(in == "path" || p.required))
			if p.doc != "" {
				w.line(10, "description: "+quote(p.doc))
			}
			w.line(10, "schema:")
			switch {
			case p.format == "int" || p.name == "revision":
				w.line(12, "type: integer")
				w.line(12, "minimum: 0")
			case p.format != "":
				w.line(12, "type: string")
				w.line(12, "format: "+p.format)
			default:
				w.line(12, "type: string")
				if in == "path" {
					w.line(12, "minLength: 1")
				}
			}
		}
	}
	writeParams("path", r.pathParams)
	writeParams("query", r.query)
	if r.body != "" {
		w.line(6, "requestBody:")
		w.line(8, "required: true")
		w.line(8, "content:")
		w.line(10, "application/json:")
		w.line(12, "schema:")
		w.line(14, refTo("schemas", r.body))
	}
	w.line(6, "responses:")
	w.line(8, fmt.Sprintf("'%d':", r.ok))
	w.line(10, "description: "+quote(r.okNote))
	w.line(10, "headers:")
	for _, h := range [][2]string{{"Request-Id", "RequestId"}, {"Kakin-Version", "KakinVersion"},
		{"RateLimit-Limit", "RateLimitLimit"}, {"RateLimit-Remaining", "RateLimitRemaining"}, {"RateLimit-Reset", "RateLimitReset"}} {
		w.line(12, h[0]+":")
		w.line(14, refTo("headers", h[1]))
	}
	if r.etag {
		w.line(12, "ETag:")
		w.line(14, refTo("headers", "ETag"))
	}
	if r.Write {
		w.line(12, "Idempotent-Replayed:")
		w.line(14, refTo("headers", "IdempotentReplayed"))
	}
	if r.ok == 201 {
		w.line(12, "Location:")
		w.line(14, refTo("headers", "Location"))
	}
	w.line(10, "content:")
	w.line(12, "application/json:")
	w.line(14, "schema:")
	w.line(16, refTo("schemas", r.okSchema))
	statuses := map[int]string{400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests", 503: "ServiceUnavailable"}
	for _, s := range r.statuses {
		statuses[s] = ""
	}
	if r.Write {
		statuses[409], statuses[413], statuses[422] = "", "", ""
	}
	codes := make([]int, 0, len(statuses))
	for c := range statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		name := statuses[c]
		if name == "" {
			name = map[int]string{404: "NotFound", 409: "CatalogConflict", 413: "PayloadTooLarge", 422: "InvalidEntity", 428: "PreconditionRequired"}[c]
		}
		w.line(8, fmt.Sprintf("'%d':", c))
		w.line(10, refTo("responses", name))
	}
}

func parametersBlock() string {
	var w yw
	w.line(4, "IfMatch:")
	w.line(6, "name: If-Match")
	w.line(6, "in: header")
	w.line(6, "required: false")
	w.text(6, "description", "The revision this change modifies: the `ETag` of your read, e.g. `\"3\"` (or `*` for whatever is current). "+
		"If the entity changed since, the answer is 409 `revision_conflict` and nothing is written. "+
		"Updates and deletes need it (or the revision in the body, or `?revision=` for a delete): without one they are answered 428.")
	w.line(6, "schema:")
	w.line(8, "type: string")
	w.line(8, "example: '\"3\"'")
	return w.b.String()
}

func headersBlock() string {
	var w yw
	w.line(4, "ETag:")
	w.line(6, "description: 'the revision of the entity, quoted (`\"3\"`): send it back as `If-Match` to change it'")
	w.line(6, "required: false")
	w.line(6, "schema:")
	w.line(8, "type: string")
	return w.b.String()
}

func responsesBlock() string {
	var w yw
	problem := func(name, desc string, headers [][2]string) {
		w.line(4, name+":")
		w.text(6, "description", desc)
		w.line(6, "headers:")
		for _, h := range append([][2]string{{"Request-Id", "RequestId"}, {"Kakin-Version", "KakinVersion"}}, headers...) {
			w.line(8, h[0]+":")
			w.line(10, refTo("headers", h[1]))
		}
		w.line(6, "content:")
		w.line(8, "application/problem+json:")
		w.line(10, "schema:")
		w.line(12, refTo("schemas", "Problem"))
	}
	problem("CatalogConflict", "The change conflicts with the current state; nothing was written. Codes: `revision_conflict` "+
		"(the entity changed since the revision you sent; `ETag` names the current one: read it again and reapply your change), "+
		"`already_exists` (the id is in use), `still_referenced` (a delete of an entity others reference; `errors` names them), "+
		"`contract_in_effect` (a delete of a contract that has taken effect and may have charges: cancel it, or end a basic contract, instead), "+
		"and `idempotency_in_progress` (a request with this `Idempotency-Key` is still running; retry after `Retry-After`).",
		[][2]string{{"Retry-After", "RetryAfterOptional"}, {"ETag", "ETag"}, {"Idempotent-Replayed", "IdempotentReplayed"}})
	problem("InvalidEntity", "The entity is not valid (`invalid_entity`): `errors` names each field and why — overlapping validity "+
		"periods, tiers with gaps or overlaps, unknown references, negative prices, prices and amounts no stored line could hold (a price per unit "+
		"of 10^10 or more, an amount of 10^18 or more, more than 9 decimal places; e.g. `versions[0].unit_price`), a currency that differs from the basic contract's, "+
		"and problems the change would cause in entities that reference it (named `<kind>s[<id>].<field>`). Or the "+
		"`Idempotency-Key` was already used with another request (`idempotency_key_reused`).",
		[][2]string{{"Idempotent-Replayed", "IdempotentReplayed"}})
	problem("PreconditionRequired", "The change does not say which revision it modifies (`precondition_required`): send "+
		"`If-Match` with the `ETag` of your read, or the `revision` in the body.", nil)
	return w.b.String()
}

// ---- schemas ----

// omap is a JSON object that keeps its key order.
type omap struct {
	keys []string
	vals map[string]any
}

func (m *omap) get(k string) any { return m.vals[k] }

func (m *omap) set(k string, v any) {
	if _, ok := m.vals[k]; !ok {
		m.keys = append(m.keys, k)
	}
	m.vals[k] = v
}

func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := &omap{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				m.set(kt.(string), v)
			}
			_, err := dec.Token()
			return m, err
		case '[':
			var list []any
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token()
			return list, err
		}
	}
	return tok, nil
}

// schemaDefinitions reads the catalogue file's schema definitions, with
// references pointing into the OpenAPI components.
func schemaDefinitions() (*omap, error) {
	dec := json.NewDecoder(bytes.NewReader(catalog.JSONSchema()))
	dec.UseNumber()
	root, err := decodeOrdered(dec)
	if err != nil && err != io.EOF {
		return nil, err
	}
	var fix func(v any)
	fix = func(v any) {
		switch x := v.(type) {
		case *omap:
			if r, ok := x.vals["$ref"].(string); ok {
				x.vals["$ref"] = strings.Replace(r, "#/definitions/", "#/components/schemas/", 1)
			}
			for _, k := range x.keys {
				fix(x.vals[k])
			}
		case []any:
			for _, e := range x {
				fix(e)
			}
		}
	}
	defs := root.(*omap).get("definitions").(*omap)
	fix(defs)
	return defs, nil
}

func writeValue(w *yw, indent int, key string, v any) {
	prefix := key + ":"
	switch x := v.(type) {
	case *omap:
		if len(x.keys) == 0 {
			w.line(indent, prefix+" {}")
			return
		}
		w.line(indent, prefix)
		for _, k := range x.keys {
			writeValue(w, indent+2, yamlKey(k), x.vals[k])
		}
	case []any:
		if len(x) == 0 {
			w.line(indent, prefix+" []")
			return
		}
		simple := true
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				simple = false
				break
			}
			parts[i] = quote(s)
		}
		if simple {
			w.line(indent, prefix+" ["+strings.Join(parts, ", ")+"]")
			return
		}
		w.line(indent, prefix)
		for _, e := range x {
			var sub yw
			writeValue(&sub, 0, "x", e)
			lines := strings.Split(strings.TrimSuffix(sub.b.String(), "\n"), "\n")
			// "x:" then its members: turn into a list item.
			lines = lines[1:]
			for i, l := range lines {
				l = l[2:]
				if i == 0 {
					w.line(indent+2, "- "+l)
				} else {
					w.line(indent+4, l)
				}
			}
		}
	case string:
		w.line(indent, prefix+" "+quote(x))
	case json.Number:
		w.line(indent, prefix+" "+x.String())
	case bool:
		w.line(indent, prefix+" "+strconv.FormatBool(x))
	case nil:
		w.line(indent, prefix+" null")
	}
}

func yamlKey(k string) string {
	if k == "$ref" || strings.ContainsAny(k, ":#") {
		return quote(k)
	}
	return k
}

func obj(kv ...any) *omap {
	m := &omap{vals: map[string]any{}}
	for i := 0; i+1 < len(kv); i += 2 {
		m.set(kv[i].(string), kv[i+1])
	}
	return m
}

func ref(name string) *omap { return obj("$ref", "#/components/schemas/"+name) }

// withMeta is a document schema plus the answer's read-only fields.
func withMeta(doc *omap, required bool) *omap {
	out := &omap{vals: map[string]any{}}
	for _, k := range doc.keys {
		out.set(k, doc.vals[k])
	}
	props := &omap{vals: map[string]any{}}
	props.set("revision", obj("type", "integer", "minimum", json.Number("1"), "description",
		"the revision: 1 when registered, one more with every change (also the ETag)"))
	props.set("created_at", obj("type", "string", "format", "date-time", "description", "when the entity was first registered"))
	props.set("changed_at", obj("type", "string", "format", "date-time", "description", "when this revision was written"))
	props.set("changed_by", obj("type", "string", "description", "who wrote this revision (`client:<id>`, `cli:<user>@<host>`, …)"))
	props.set("deleted", obj("type", "boolean", "description", "true for a tombstone revision (history, `as_of` reads and delete answers)"))
	if !required {
		props.set("revision", obj("type", "integer", "minimum", json.Number("0"), "description",
			"the revision this update modifies, when `If-Match` is not sent; ignored on registration"))
		props.set("created_at", obj("type", "string", "description", "read-only; ignored"))
		props.set("changed_at", obj("type", "string", "description", "read-only; ignored"))
		props.set("changed_by", obj("type", "string", "description", "read-only; ignored"))
		props.set("deleted", obj("type", "boolean", "description", "read-only; ignored"))
	}
	for _, k := range doc.get("properties").(*omap).keys {
		props.set(k, doc.get("properties").(*omap).vals[k])
	}
	out.set("properties", props)
	if required {
		req := []any{"revision", "created_at", "changed_at", "changed_by"}
		if r, ok := doc.get("required").([]any); ok {
			req = append(req, r...)
		}
		out.set("required", req)
	}
	return out
}

func schemasBlock(defs *omap) string {
	var w yw
	for _, k := range defs.keys {
		writeValue(&w, 4, k, defs.vals[k])
	}
	for _, res := range resources {
		doc := defs.get(res.schema).(*omap)
		in := withMeta(doc, false)
		in.set("description", "a "+res.short()+" to register or update: the document; the read-only fields of an answer may be sent back and are ignored")
		writeValue(&w, 4, res.schema+"Input", in)
		ent := withMeta(doc, true)
		ent.set("description", "a "+res.title+" as the API answers it: the document with its revision")
		writeValue(&w, 4, res.schema+"Entity", ent)
		writeValue(&w, 4, res.schema+"Page", obj("type", "object", "description", "one page of "+res.names+" (or revisions)",
			"required", []any{"items"}, "properties", obj(
				"items", obj("type", "array", "items", ref(res.schema+"Entity")),
				"nextPage", obj("type", "string", "description", "the cursor of the next page; absent on the last page"))))
	}
	writeValue(&w, 4, "EndVersionRequest", obj("type", "object", "additionalProperties", false, "required", []any{"valid_to"},
		"properties", obj("valid_to", obj("type", "string", "format", "date-time",
			"description", "the first instant the version no longer applies: after its valid_from, not after its current valid_to"))))
	writeValue(&w, 4, "CancelRequest", obj("type", "object", "additionalProperties", false, "required", []any{"end_date"},
		"properties", obj("end_date", obj("$ref", "#/components/schemas/Date"))))
	writeValue(&w, 4, "ContractNode", obj("type", "object", "description", "a service contract with its child contracts and options",
		"required", []any{"contract", "service_name", "service_kind", "children", "options"}, "properties", obj(
			"contract", ref("ServiceContractEntity"),
			"service_name", obj("type", "string", "description", "the service's name from the service master"),
			"service_kind", obj("type", "string", "enum", []any{"service", "option"}),
			"children", obj("type", "array", "items", ref("ContractNode"), "description", "child service contracts (子サービス契約)"),
			"options", obj("type", "array", "items", ref("ContractNode"), "description", "option contracts (オプション)"))))
	writeValue(&w, 4, "ContractTree", obj("type", "object", "description", "a customer's contracts",
		"required", []any{"customer", "basic_contracts", "service_contracts", "discount_contracts"}, "properties", obj(
			"customer", obj("type", "string"),
			"basic_contracts", obj("type", "array", "items", ref("BasicContractEntity")),
			"service_contracts", obj("type", "array", "items", ref("ContractNode"), "description", "parent service contracts, each with its children and options"),
			"discount_contracts", obj("type", "array", "items", ref("DiscountContractEntity")))))
	listed := obj("contract", ref("ServiceContractEntity"),
		"service_name", obj("type", "string", "description", "the contract's service's name from the service master"),
		"options", obj("type", "array", "items", ref("ListedContract"), "description", "option contracts under it (オプション)"))
	writeValue(&w, 4, "ListedContract", obj("type", "object", "description", "a service contract with its option contracts",
		"required", []any{"contract", "service_name", "options"}, "properties", listed))
	withProducts := &omap{vals: map[string]any{}}
	for _, k := range listed.keys {
		withProducts.set(k, listed.vals[k])
	}
	withProducts.set("product_contracts", obj("type", "array", "items", ref("ListedContract"),
		"description", "child product contracts (子サービス契約), each with its options; their accounts are in `contract.accounts`"))
	writeValue(&w, 4, "ServiceContractListing", obj("type", "object",
		"description", "a contract of the service (親サービス) with its options and child product contracts; its associated services (連携サービス) are in `contract.associated_services`",
		"required", []any{"contract", "service_name", "options", "product_contracts"}, "properties", withProducts))
	writeValue(&w, 4, "ServiceContractListingPage", obj("type", "object", "description", "one page of a service's contracts",
		"required", []any{"items"}, "properties", obj(
			"items", obj("type", "array", "items", ref("ServiceContractListing")),
			"nextPage", obj("type", "string", "description", "the cursor of the next page; absent on the last page"))))
	writeValue(&w, 4, "CustomerStats", obj("type", "object", "description", "the tenant's customer count (顧客数照会)",
		"required", []any{"customers", "active", "suspended"}, "properties", obj(
			"customers", obj("type", "integer", "minimum", json.Number("0")),
			"active", obj("type", "integer", "minimum", json.Number("0")),
			"suspended", obj("type", "integer", "minimum", json.Number("0")))))
	return w.b.String()
}
