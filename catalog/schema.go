package catalog

import (
	_ "embed"
	"slices"
)

// jsonSchema is the JSON Schema (draft-07) of a catalogue file. It keeps to
// the subset OpenAPI 3.0 accepts, so the API document reuses its
// definitions for the documents of the admin API.
//
//go:embed catalogue.schema.json
var jsonSchema []byte

// JSONSchema returns the JSON Schema of a catalogue file.
func JSONSchema() []byte { return slices.Clone(jsonSchema) }
