package catalogapi

import (
	"flag"
	"os"
	"testing"

	"github.com/kakin-dev/kakin/schemas/openapi"
)

var update = flag.Bool("update", false, "rewrite the generated blocks of schemas/openapi/openapi.yaml")

const documentPath = "../../schemas/openapi/openapi.yaml"

// The catalogue's part of the OpenAPI document is generated from Routes and
// the catalogue file's JSON Schema; it must be current.
func TestOpenAPIDocumentIsCurrent(t *testing.T) {
	blocks, err := New(nil, nil, nil).OpenAPIBlocks()
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(documentPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReplaceBlocks(string(cur), blocks)
	if err != nil {
		t.Fatal(err)
	}
	if want == string(cur) {
		return
	}
	if *update {
		if err := os.WriteFile(documentPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("schemas/openapi/openapi.yaml rewritten")
		return
	}
	t.Fatal("schemas/openapi/openapi.yaml is not current: run go test ./admin/catalogapi -run TestOpenAPIDocumentIsCurrent -update")
}

// Every route is in the document with its scope.
func TestRoutesAreDocumented(t *testing.T) {
	doc, err := openapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range New(nil, nil, nil).Routes() {
		item := doc.Paths.Value(r.Path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s is not in the document", r.Pattern())
			continue
		}
		op := item.GetOperation(r.Method)
		if op.OperationID != r.OperationID || op.Security == nil || len(*op.Security) != 1 || (*op.Security)[0]["oauth2"][0] != string(r.Scope) {
			t.Errorf("%s: operation %s security %v", r.Pattern(), op.OperationID, op.Security)
		}
	}
}
