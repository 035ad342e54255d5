package compiler

import (
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// NotifyEnforcer where acting at the hook is not acting at the enforced
// call is refused, each with its place and reason.
func TestNotifyEnforcerRefusals(t *testing.T) {
	for _, tc := range []struct{ name, spec, want string }{
		{"kprobe not enforced", `  enforcers:
  - calls: [sys_dup]
  kprobes:
  - call: fd_install
    syscall: false
    selectors:
    - matchActions:
      - action: NotifyEnforcer
        argSig: 9
`, "policy.yaml:13:9: spec.kprobes[0].selectors[0].matchActions[0]: action NotifyEnforcer acts when the thread makes one of the enforcer's calls (sys_dup); this agent acts at the notifying hook itself, so the hook must be one of them, and fd_install is not"},
		{"raw_syscalls without id", `  enforcers:
  - calls: [sys_dup]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args:
    - {index: 4, type: uint64}
    selectors:
    - matchActions:
      - action: NotifyEnforcer
        argSig: 9
`, "no matchArgs entry restricts the system call number (field 4, id)"},
		{"raw_syscalls matching another call", `  enforcers:
  - calls: [sys_dup]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args:
    - {index: 4, type: uint64}
    selectors:
    - matchArgs:
      - {index: 4, operator: Equal, values: ["32", "33"]}
      matchActions:
      - action: NotifyEnforcer
        argSig: 9
`, "it matches system call 33, which is not one of the enforcer's calls (sys_dup)"},
		{"raw_syscalls InMap range with another call", `  enforcers:
  - calls: [sys_dup]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args:
    - {index: 4, type: uint64}
    selectors:
    - matchArgs:
      - {index: 4, operator: InMap, values: ["32:33"]}
      matchActions:
      - action: NotifyEnforcer
        argSig: 9
`, "it matches system call 33, which is not one of the enforcer's calls (sys_dup)"},
		{"raw_syscalls InMap long range", `  enforcers:
  - calls: [sys_dup]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args:
    - {index: 4, type: uint64}
    selectors:
    - matchArgs:
      - {index: 4, operator: InMap, values: ["32", "0:1000"]}
      matchActions:
      - action: NotifyEnforcer
        argSig: 9
`, "InMap range 0:1000 is not a short range of system call numbers"},
		{"other tracepoint", `  enforcers:
  - calls: [sys_dup]
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    selectors:
    - matchActions:
      - action: NotifyEnforcer
        argSig: 9
`, "action NotifyEnforcer on tracepoint sched/sched_process_exec: this agent acts at the notifying hook itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := tp.Parse("policy.yaml", []byte("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\nspec:\n"+tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			_, err = FromPolicy(ps[0], false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// the same call: accepted, argSig as Signal and argError as Override
	ps, err := tp.Parse("policy.yaml", []byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: p
spec:
  enforcers:
  - calls: [security_file_open]
  kprobes:
  - call: security_file_open
    syscall: false
    args: [{index: 0, type: file}]
    selectors:
    - matchActions:
      - action: NotifyEnforcer
        argSig: 10
        argError: -1
`))
	if err != nil {
		t.Fatal(err)
	}
	decls, err := FromPolicy(ps[0], false)
	if err != nil {
		t.Fatal(err)
	}
	flags, sig, errno, err := compileActions(decls[0].Selectors[0].MatchActions, nil)
	if err != nil || sig != 10 || errno != -1 || flags != sensor.ActSignal|sensor.ActOverride|sensor.ActPost {
		t.Errorf("compiled %#x %d %d %v, want Signal 10, Override -1 and Post", flags, sig, errno, err)
	}
}
