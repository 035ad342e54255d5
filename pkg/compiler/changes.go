package compiler

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// compileCapabilityChange compiles a matchCapabilityChanges entry: the
// capability set against the one the process had at its exec. In holds
// when a listed capability changed, NotIn when only unlisted ones did; with
// isNamespaceCapability neither holds in the host's user namespace, as in
// Tetragon.
func compileCapabilityChange(c tracingpolicy.CapabilitiesSelector) (sensor.Match, error) {
	cm, err := compileCapabilities(c)
	cm.Kind = sensor.MatchCapChange
	return cm, err
}

// compileNamespaceChange compiles a matchNamespaceChanges entry: the
// process's namespaces against those it had at its exec.
func compileNamespaceChange(n tracingpolicy.NamespaceChangesSelector) (sensor.Match, error) {
	op, err := setOp(n.Operator)
	if err != nil {
		return sensor.Match{}, err
	}
	if n.Mask == 0 {
		return sensor.Match{}, fmt.Errorf("no namespaces")
	}
	return sensor.Match{Kind: sensor.MatchNsChange, Op: op, Ints: []int64{int64(n.Mask)}}, nil
}

// compileChanges compiles a selector's change entries, which read the
// process's exec record: after the cheaper entries on the task alone.
func compileChanges(s tracingpolicy.Selector) ([]sensor.Match, error) {
	var out []sensor.Match
	for _, c := range s.MatchCapabilityChanges {
		cm, err := compileCapabilityChange(c)
		if err != nil {
			return nil, fmt.Errorf("matchCapabilityChanges: %w", err)
		}
		out = append(out, cm)
	}
	for _, n := range s.MatchNamespaceChanges {
		cm, err := compileNamespaceChange(n)
		if err != nil {
			return nil, fmt.Errorf("matchNamespaceChanges: %w", err)
		}
		out = append(out, cm)
	}
	return out, nil
}
