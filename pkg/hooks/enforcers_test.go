package hooks

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// killerPolicy is Tetragon's killer.yaml with argSig only, limited to the
// process %[3]d: its dup and dup2 calls are notified from
// raw_syscalls/sys_enter and it gets SIGKILL.
const killerPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "kill-dups"
spec:
  lists:
  - name: "dups"
    type: "syscalls"
    values:
    - "sys_dup"
    - "sys_dup2"
  killers:
  - syscalls:
    - "list:dups"
  tracepoints:
  - subsystem: "raw_syscalls"
    event: "sys_enter"
    args:
    - index: 4
      type: "uint64"
    selectors:
    - matchArgs:
      - index: 4
        operator: "InMap"
        values:
        - "list:dups"
      matchPIDs:
      - operator: In
        values:
        - %[3]d
      matchActions:
      - action: "NotifyKiller"
        argSig: 9
`

// NotifyKiller with argSig from raw_syscalls/sys_enter kills the process
// at the enforced system call (dup); a process the selector does not name
// dups unharmed, and the event says NOTIFYENFORCER.
func TestNotifyKillerSignal(t *testing.T) {
	h := newHarness(t, compiler.MechTracepoint, testutil.Kernel(t).Map())
	writeFiles(t, h.dir, map[string]string{"held": "h"})
	victim := h.startDupHelper(t, h.dir+"/held")
	bystander := h.startDupHelper(t, h.dir+"/held")
	p := h.parse(t, killerPolicy, "", victim.cmd.Process.Pid)
	if err := h.m.LoadPolicy(p); err != nil {
		t.Fatal(err)
	}
	if killed := bystander.dup(t); killed {
		t.Error("the process the selector does not name was killed at dup")
	}
	if killed := victim.dup(t); !killed {
		t.Error("the notified process survived its dup")
	}
	events := h.events(t)
	var got []string
	for _, e := range events {
		got = append(got, e.text)
	}
	// 32: dup's number on x86_64
	want := "dup-helper raw_syscalls/sys_enter NOTIFYENFORCER size:32"
	if len(got) != 1 || got[0] != want {
		t.Errorf("events %q, want [%q]", got, want)
	}
	if st := h.stats(t); st.Signals != 1 {
		t.Errorf("stats %+v, want 1 signal", st)
	}
}

// notifyOpenPolicy: opening protected fails with EPERM (argError) through
// the enforcer on security_file_open, and opening killme gets SIGKILL
// (argSig), both NotifyEnforcer at the enforced function itself.
const notifyOpenPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "notify-open"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  enforcers:
  - calls:
    - security_file_open
  kprobes:
  - call: "security_file_open"
    syscall: false
    args:
    - index: 0
      type: "file"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[2]s/protected"
      matchActions:
      - action: NotifyEnforcer
        argError: -1
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[2]s/killme"
      matchActions:
      - action: NotifyEnforcer
        argSig: 9
`

// NotifyEnforcer on a kprobe of the enforced function: argError fails
// the open (fmod_ret), argSig kills; another file is untouched. On a
// kernel without kprobes, the mapping serves argSig and refuses argError.
func TestNotifyEnforcerKprobe(t *testing.T) {
	testutil.RequireRoot(t)
	features := testutil.Kernel(t).Map()
	t.Run("fmod_ret", func(t *testing.T) {
		testutil.RequireFeature(t, "kprobe")
		testutil.RequireFeature(t, "fmod_ret")
		h := newHarness(t, compiler.MechKprobe, features)
		writeFiles(t, h.dir, map[string]string{"protected": "secret", "killme": "k", "other": "x"})
		name, err := h.tryLoad(t, notifyOpenPolicy, "auto")
		if err != nil {
			t.Fatal(err)
		}
		if mech := h.mechanismOf(t, name); mech != compiler.MechFmodRet {
			t.Fatalf("hook served by %s, want %s", mech, compiler.MechFmodRet)
		}
		if out, _ := h.runFails(t, "cat", filepath.Join(h.dir, "protected")); !strings.Contains(out, "Operation not permitted") {
			t.Fatalf("cat protected: %q, want EPERM", out)
		}
		if out, killed := h.run(t, "cat", filepath.Join(h.dir, "killme")); !killed || out != "" {
			t.Fatalf("cat killme: %q killed=%v, want killed before reading", out, killed)
		}
		if out, killed := h.run(t, "cat", filepath.Join(h.dir, "other")); killed || out != "x" {
			t.Fatalf("cat other: %q, want untouched", out)
		}
		var got []string
		for _, e := range h.events(t) {
			got = append(got, e.text)
		}
		want := []string{"cat security_file_open NOTIFYENFORCER file:$DIR/protected", "cat security_file_open NOTIFYENFORCER file:$DIR/killme"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
	t.Run("syscall-tracepoint", func(t *testing.T) {
		h := newHarness(t, compiler.MechSyscallTracepoint, features)
		_, err := h.tryLoad(t, notifyOpenPolicy, compiler.MechSyscallTracepoint)
		if err == nil || !strings.Contains(err.Error(), "action NotifyEnforcer with argError: action Override needs bpf_override_return, fmod_ret or BPF LSM") {
			t.Fatalf("error %v, want argError refused on the mapping", err)
		}
	})
}
