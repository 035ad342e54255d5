package compiler

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/hookevent"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// expandLists without a kernel: kprobes get one hook per function, named
// by its entry point; the mapping one hook for the whole syscall list.
func TestExpandLists(t *testing.T) {
	d := Decl{Kind: hookevent.KindKprobe, Call: "list:io", Syscall: true, Args: []tp.ArgSpec{{Index: 0, Type: "fd"}},
		List: ListDecl{Name: "io", Type: "syscalls", Funcs: []string{"sys_read", "__x64_sys_close"}}}
	out, err := ExpandLists([]Decl{d}, Facts{Features: map[string]bool{kernelfeatures.Kprobe: true, kernelfeatures.Kretprobe: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Call != tp.SyscallSymbol("read") || out[1].Call != tp.SyscallSymbol("close") ||
		!out[0].Syscall || out[0].List.Name != "" || out[1].Args[0].Type != "fd" {
		t.Fatalf("kprobes: %+v", out)
	}
	out, err = ExpandLists([]Decl{d}, Facts{Features: map[string]bool{}})
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

// TestKernelSyscalls: a generated_syscalls list holds the system calls of
// the running kernel, read from its BTF (which needs no root).
func TestKernelSyscalls(t *testing.T) {
	all, err := kernelSyscalls(runningKernel())
	if err != nil {
		t.Fatal(err)
	}
	// a kernel of today has several hundred system calls
	if len(all) < 250 || !slices.Contains(all, "openat") || !slices.Contains(all, "exit_group") {
		t.Fatalf("%d system calls from BTF: %v", len(all), all)
	}
}
