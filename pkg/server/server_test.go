package server

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// A request with a filter this agent does not serve (as Tetragon's tetra
// sends for --namespace or --include-fields) is refused, naming the field,
// instead of streaming what the filter would have held back.
func TestUnservedFieldsRefused(t *testing.T) {
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
	}
	msg := func(b []byte, num protowire.Number, inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), inner)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"served filters", msg(nil, 1, str(str(nil, 1, "cat"), 7, "web")), ""},
		{"a private filter", msg(nil, 2, str(nil, 10000, "web")), ""},
		{"a served namespace filter", msg(nil, 1, str(str(nil, 1, "cat"), 2, "default")), ""},
		{"Tetragon's health_check filter", msg(nil, 1, str(str(nil, 1, "cat"), 3, "x")), "Filter field 3"},
		{"Tetragon's field filters", msg(nil, 4, str(nil, 1, "x")), "GetEventsRequest sets fields this agent does not serve (field 4)"},
		{"served labels and container id filters", msg(nil, 1, str(str(nil, 9, "app=x"), 15, "^abc")), ""},
		{"in a deny list", msg(nil, 2, str(str(str(nil, 9, "app=x"), 13, "true"), 17, "sh")), "Filter field 13, 17"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &api.GetEventsRequest{}
			if err := proto.Unmarshal(tc.raw, req); err != nil {
				t.Fatal(err)
			}
			err := unservedFields(req)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("unservedFields: %v, want %q", err, tc.want)
			}
		})
	}
}
