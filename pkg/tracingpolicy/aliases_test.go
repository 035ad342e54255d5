package tracingpolicy

import "testing"

// TestTetragonSpellings: what Tetragon's parser accepts beyond the names
// its documentation uses parses here to the same policy: action names in
// any case ("SigKill"), its other operator spellings ("family", "gt",
// "Dport"), and a returnArg without return: true, which Tetragon ignores.
func TestTetragonSpellings(t *testing.T) {
	pols, err := Parse("x.yaml", []byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: spellings
spec:
  kprobes:
  - call: tcp_set_state
    syscall: false
    args:
    - index: 0
      type: sock
    - index: 1
      type: int
    returnArg:
      index: 0
      type: int
    selectors:
    - matchArgs:
      - index: 0
        operator: family
        values: ["AF_INET"]
      - index: 0
        operator: Dport
        values: ["80"]
      - index: 1
        operator: gt
        values: ["1"]
      matchActions:
      - action: SigKill
    - matchActions:
      - action: nopost
`))
	if err != nil {
		t.Fatal(err)
	}
	k := pols[0].Spec.KProbes[0]
	if k.ReturnArg != nil {
		t.Errorf("returnArg without return: true kept: %+v", k.ReturnArg)
	}
	var ops []Operator
	for _, m := range k.Selectors[0].MatchArgs {
		ops = append(ops, m.Operator)
	}
	if len(ops) != 3 || ops[0] != OpFamily || ops[1] != OpDPort || ops[2] != OpGreaterThan {
		t.Errorf("operators %v, want Family DPort GreaterThan", ops)
	}
	if a := k.Selectors[0].MatchActions[0].Action; a != ActionSigkill {
		t.Errorf("SigKill parsed as %q", a)
	}
	if a := k.Selectors[1].MatchActions[0].Action; a != ActionNoPost {
		t.Errorf("nopost parsed as %q", a)
	}

	// matchReturnArgs still needs the return probe
	_, err = Parse("x.yaml", []byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: spellings
spec:
  kprobes:
  - call: sys_openat
    returnArg: {index: 0, type: int}
    selectors:
    - matchReturnArgs:
      - {operator: lt, values: ["0"]}
`))
	if err == nil || err.Error() != `x.yaml:11:9: spec.kprobes[0].selectors[0].matchReturnArgs[0]: matchReturnArgs needs "return: true" on the hook` {
		t.Errorf("matchReturnArgs without return: %v", err)
	}
}
