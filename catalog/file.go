package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes bounds a catalogue file.
const MaxFileBytes = 64 << 20

// Decode reads a catalogue file in YAML or JSON (JSON is YAML too). Unknown
// fields are errors. Numbers keep their exact decimal text: 0.1 stays 0.1.
// A file that does not decode gives a *DecodeError naming every problem by
// its path (rate_tables[1].versions[0].price: unknown field; …). The result
// is not validated; call Validate.
func Decode(r io.Reader) (*Catalogue, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("catalogue file is larger than %d bytes", MaxFileBytes)
	}
	js, err := YAMLToJSON(b)
	if err != nil {
		return nil, err
	}
	var c Catalogue
	if err := DecodeJSON(js, &c); err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	return &c, nil
}

// YAMLToJSON converts one YAML document to JSON, keeping numbers' exact text
// and refusing non-string keys.
func YAMLToJSON(b []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	if doc.Kind == 0 {
		return []byte("{}"), nil
	}
	var out bytes.Buffer
	if err := writeJSON(&out, &doc, maxExpandedJSON(len(b))); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// maxExpandedJSON bounds the JSON of a YAML file of n bytes. Aliases are
// written out in full, so a few lines of aliases of aliases would otherwise
// expand to gigabytes; without aliases the JSON is at most about 4 times the
// YAML (quotes, commas, escapes).
func maxExpandedJSON(n int) int { return 1<<20 + 8*n }

func writeJSON(w *bytes.Buffer, n *yaml.Node, limit int) error {
	if w.Len() > limit {
		return fmt.Errorf("catalogue: line %d: with its aliases expanded the file is larger than %d bytes", n.Line, limit)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		return writeJSON(w, n.Content[0], limit)
	case yaml.AliasNode:
		return writeJSON(w, n.Alias, limit)
	case yaml.MappingNode:
		w.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int") {
				return fmt.Errorf("catalogue: line %d: keys must be strings", k.Line)
			}
			if i > 0 {
				w.WriteByte(',')
			}
			kb, _ := json.Marshal(k.Value)
			w.Write(kb)
			w.WriteByte(':')
			if err := writeJSON(w, n.Content[i+1], limit); err != nil {
				return err
			}
		}
		w.WriteByte('}')
	case yaml.SequenceNode:
		w.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := writeJSON(w, c, limit); err != nil {
				return err
			}
		}
		w.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			w.WriteString("null")
		case "!!bool":
			v, err := strconv.ParseBool(n.Value)
			if err != nil {
				return fmt.Errorf("catalogue: line %d: %q is not a boolean", n.Line, n.Value)
			}
			w.WriteString(strconv.FormatBool(v))
		case "!!int", "!!float":
			// Written as a JSON number literal with the exact text, so a
			// decimal field reads "0.1" and not the float nearest to it.
			if !json.Valid([]byte(n.Value)) {
				return fmt.Errorf("catalogue: line %d: %q is not a plain decimal number (quote it if it is text)", n.Line, n.Value)
			}
			w.WriteString(n.Value)
		default:
			vb, _ := json.Marshal(n.Value)
			w.Write(vb)
		}
	default:
		return fmt.Errorf("catalogue: line %d: unsupported YAML node", n.Line)
	}
	return nil
}
