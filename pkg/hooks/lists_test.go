package hooks

import (
	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// A list of system calls sharing an fd argument and a selector: each
// event names the system call it is of. The mapping serves the list with
// one hook (one table entry per system call), kprobes with one per call.
const syscallListPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "syscall-list"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "list:io"
    args:
    - index: 0
      type: fd
    selectors:
    - matchArgs:
      - index: 0
        operator: Prefix
        values: ["%[2]s/data"]
      matchBinaries:
      - operator: In
        values: ["%[2]s/a/cat"]
  lists:
  - name: io
    type: syscalls
    values: [sys_openat, sys_read, sys_close]
`

func TestSyscallList(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		e := newFilterEnv(t, mech)
		if _, err := e.h.tryLoad(t, syscallListPolicy, mech); err != nil {
			t.Fatal(err)
		}
		hooks := map[string]string{}
		for _, p := range e.h.m.Status() {
			for _, h := range p.Hooks {
				hooks[h.Call] = h.Mechanism
			}
		}
		want := map[string]string{"list:io": mech}
		if mech == MechKprobe {
			want = map[string]string{}
			for _, s := range []string{"openat", "read", "close"} {
				want[tp.SyscallSymbol(s)] = mech
			}
		}
		if !maps.Equal(hooks, want) {
			t.Fatalf("hooks %v, want %v", hooks, want)
		}
		e.h.run(t, e.path("a/cat"), "data0")
		e.h.run(t, e.path("b/cat"), "data1") // not a/cat: no event
		// openat's argument 0 is AT_FDCWD, no file: its selector does not
		// match. cat reads until EOF, then closes the file; the selector
		// matched the file behind the fd, the event reports the fd number,
		// as for a single system call.
		read, closed := tp.SyscallSymbol("read"), tp.SyscallSymbol("close")
		wantEvents := []string{"$DIR/a/cat " + closed + " POST int:3"}
		if out, _ := exec.Command(e.path("a/cat"), "--version").Output(); strings.Contains(string(out), "GNU coreutils") {
			// GNU cat reads until EOF; busybox's (the lanes') copies
			// with sendfile, whose argument 0 is stdout
			wantEvents = append([]string{"$DIR/a/cat " + read + " POST int:3", "$DIR/a/cat " + read + " POST int:3"}, wantEvents...)
		}
		var got []string
		for _, ev := range e.h.events(t) {
			got = append(got, ev.text)
		}
		if !slices.Equal(got, wantEvents) {
			t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantEvents, "\n"))
		}
	})
}

// generated_syscalls: every system call of the running kernel, from its
// BTF. Through the mapping it is one hook whose table holds them all.
func TestGeneratedSyscallsList(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	e := newFilterEnv(t, MechSyscallTracepoint)
	const policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "all-syscalls"
spec:
  options:
  - {name: hook-mechanism, value: "%[1]s"}
  lists:
  - name: all
    type: generated_syscalls
  kprobes:
  - call: "list:all"
    selectors:
    - matchBinaries:
      - operator: In
        values: ["%[2]s/a/cat"]
`
	e.h.loadWith(t, policy, MechSyscallTracepoint)
	all, err := kernelSyscalls(sensor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// a kernel of today has several hundred system calls
	if len(all) < 250 || !slices.Contains(all, "openat") || !slices.Contains(all, "exit_group") {
		t.Fatalf("%d system calls from BTF: %v", len(all), all)
	}
	e.h.run(t, e.path("a/cat"), "data0")
	e.h.run(t, e.path("b/cat"), "data1")
	seen := map[string]bool{}
	for _, ev := range e.h.events(t) {
		name, fn, _ := strings.Cut(ev.text, " ")
		fn, _, _ = strings.Cut(fn, " ")
		if name != "$DIR/a/cat" {
			t.Errorf("event of %s: %s", name, ev.text)
		}
		seen[fn] = true
	}
	// what every cat does after exec, whatever its libc
	for _, s := range []string{"openat", "close", "exit_group"} {
		if !seen[tp.SyscallSymbol(s)] {
			t.Errorf("no event of %s; seen %v", s, seen)
		}
	}
}

// generated_ftrace names kernel functions, which only kprobes hook: the
// mapping refuses it, naming the feature.
func TestGeneratedFtraceNeedsKprobes(t *testing.T) {
	testutil.RequireRoot(t)
	h := newHarness(t, MechSyscallTracepoint, testutil.Kernel(t).Map())
	const policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "ftrace-list"
spec:
  options:
  - {name: hook-mechanism, value: "%[1]s"}
  lists:
  - {name: fds, type: generated_ftrace, pattern: "^fd_install$"}
  kprobes:
  - call: "list:fds"
    args: [{index: 1, type: file}]
`
	_, err := h.tryLoad(t, policy, MechSyscallTracepoint)
	want := `policy "ftrace-list": policy.yaml:11:5: spec.kprobes[0]: list:fds: list "fds" (generated_ftrace) names kernel functions, which only kprobes and fentries can hook, and this kernel has no kprobes (probe feature kprobe)`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant   %s", err, want)
	}
	if len(h.m.Status()) != 0 {
		t.Fatalf("loaded: %+v", h.m.Status())
	}
}

// On kprobes, a generated_ftrace list hooks each function the pattern
// matches in available_filter_functions.
func TestGeneratedFtraceList(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, kernelfeatures.Kprobe)
	e := newFilterEnv(t, MechKprobe)
	const policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "ftrace-list"
spec:
  options:
  - {name: hook-mechanism, value: "%[1]s"}
  lists:
  - {name: fds, type: generated_ftrace, pattern: "^fd_install$"}
  kprobes:
  - call: "list:fds"
    args: [{index: 1, type: file}]
    selectors:
    - matchArgs: [{index: 1, operator: Prefix, values: ["%[2]s/data"]}]
      matchBinaries: [{operator: In, values: ["%[2]s/a/cat"]}]
`
	e.h.loadWith(t, policy, MechKprobe)
	e.h.run(t, e.path("a/cat"), "data0")
	e.h.run(t, e.path("b/cat"), "data1")
	var got []string
	for _, ev := range e.h.events(t) {
		got = append(got, ev.text)
	}
	if want := []string{"$DIR/a/cat fd_install POST file:$DIR/data0"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestFtraceFuncs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "available_filter_functions"),
		[]byte("ksys_dup3\nfd_install\nksys_read\nksys_dup3\nksys_mod [some_module]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ftraceFuncs([]string{filepath.Join(dir, "missing"), dir}, regexp.MustCompile("^ksys_"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ksys_dup3", "ksys_mod", "ksys_read"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := ftraceFuncs([]string{filepath.Join(dir, "missing")}, regexp.MustCompile("x")); err == nil ||
		!strings.Contains(err.Error(), "generated_ftrace lists are read from tracefs available_filter_functions") {
		t.Fatalf("missing tracefs: %v", err)
	}
}

// expandLists without a kernel: kprobes get one hook per function, named
// by its entry point; the mapping one hook for the whole syscall list.
func TestExpandLists(t *testing.T) {
	d := HookDecl{Kind: hookevent.KindKprobe, Call: "list:io", Syscall: true, Args: []tp.ArgSpec{{Index: 0, Type: "fd"}},
		List: ListDecl{Name: "io", Type: "syscalls", Funcs: []string{"sys_read", "__x64_sys_close"}}}
	out, err := expandLists([]HookDecl{d}, sensor.Options{Features: map[string]bool{kernelfeatures.Kprobe: true, kernelfeatures.Kretprobe: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Call != tp.SyscallSymbol("read") || out[1].Call != tp.SyscallSymbol("close") ||
		!out[0].Syscall || out[0].List.Name != "" || out[1].Args[0].Type != "fd" {
		t.Fatalf("kprobes: %+v", out)
	}
	out, err = expandLists([]HookDecl{d}, sensor.Options{Features: map[string]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !slices.Equal(out[0].List.Funcs, []string{"read", "close"}) {
		t.Fatalf("mapping: %+v", out)
	}
	table, funcs, err := listTable(out[0], sensor.OnEnter)
	if err != nil || len(table) != 2 || funcs[sysRead] != tp.SyscallSymbol("read") || funcs[3] != tp.SyscallSymbol("close") {
		t.Fatalf("table %v funcs %v err %v", table, funcs, err)
	}
	bad := out[0]
	bad.List.Funcs = []string{"nosuchcall"}
	if _, _, err := listTable(bad, sensor.OnEnter); err == nil || err.Error() != `list "io": "nosuchcall" is not a system call of this architecture` {
		t.Fatalf("unknown syscall: %v", err)
	}
}
