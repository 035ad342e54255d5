package compiler

import (
	"fmt"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// TestCompileChanges checks what the change filters compile to.
func TestCompileChanges(t *testing.T) {
	ms, err := compileChanges(tp.Selector{
		MatchCapabilityChanges: []tp.CapabilitiesSelector{{Type: tp.CapPermitted, Operator: tp.OpNotIn, Mask: 1 << 21}},
		MatchNamespaceChanges:  []tp.NamespaceChangesSelector{{Operator: tp.OpIn, Mask: 1<<2 | 1<<9}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sensor.Match{
		{Kind: sensor.MatchCapChange, Arg: int(sensor.CapsPermitted), Op: sensor.OpNotEqual, Ints: []int64{1 << 21}},
		{Kind: sensor.MatchNsChange, Op: sensor.OpEqual, Ints: []int64{1<<2 | 1<<9}},
	}
	if fmt.Sprint(ms) != fmt.Sprint(want) {
		t.Fatalf("compiled %+v, want %+v", ms, want)
	}
	if _, err := compileChanges(tp.Selector{MatchNamespaceChanges: []tp.NamespaceChangesSelector{{Operator: tp.OpIn}}}); err == nil {
		t.Fatal("an entry without namespaces compiled")
	}
}
