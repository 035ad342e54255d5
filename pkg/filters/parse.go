package filters

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// ParseList reads filters written as Tetragon's --export-allowlist and
// --export-denylist take them: JSON objects in the api.Filter shape, one
// per line (any whitespace between objects will do), for example
//
//	{"event_set":["PROCESS_EXEC"]}
//	{"binary_regex":["^/usr/bin/curl$"]}
//
// Field names are the proto names or their lowerCamelCase JSON names, enum
// values their names, as protojson reads them. Unknown fields are errors:
// a misspelt field silently matching everything would defeat a deny list.
func ParseList(s string) ([]*api.Filter, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	var out []*api.Filter
	for i := 0; ; i++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("filter %d: not JSON: %w", i, err)
		}
		f := &api.Filter{}
		if err := protojson.Unmarshal(raw, f); err != nil {
			return nil, fmt.Errorf("filter %d %s: %w", i, raw, err)
		}
		out = append(out, f)
	}
	if len(out) > MaxFilters {
		return nil, fmt.Errorf("%d filters, the limit is %d", len(out), MaxFilters)
	}
	return out, nil
}
