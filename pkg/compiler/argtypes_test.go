package compiler

import (
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
)

// A nop argument is a placeholder: declared, never read, no record slot
// and no value in the event. The compilers of every mechanism leave it out.
func TestCompileNop(t *testing.T) {
	fd := Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: "nop"}, {Index: 1, Type: "file"}},
		Selectors: []tp.Selector{{MatchArgs: []tp.ArgSelector{{Index: 1, Operator: "Equal", Values: []string{"/tmp/x"}}}}}}
	// the mapping: fd_install's first parameter is an int in the mapping,
	// which nop fits as any parameter does
	spec, info, err := compileSyscallMapping(fd, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Args) != 1 || spec.Args[0].Kind != sensor.KindPath || len(info.event.Args) != 1 || info.event.Args[0].Type != "file" ||
		spec.Selectors[0].Matches[0].Arg != 0 {
		t.Fatalf("mapping: args %+v order %+v selectors %+v", spec.Args, info.event.Args, spec.Selectors)
	}
	kspec, info, err := compileKprobe(fd, 1, testFuncs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(kspec.Args) != 1 || kspec.Args[0].Source != sensor.SrcRegKFile || kspec.Params != 2 || len(info.event.Args) != 1 {
		t.Fatalf("kprobe: spec %+v order %+v", kspec, info.event.Args)
	}
	// a syscall through the mapping: nop between a string and an int
	sys := Decl{Call: "sys_openat", Syscall: true, Args: []tp.ArgSpec{{Index: 0, Type: "nop"}, {Index: 1, Type: "string"}, {Index: 2, Type: "nop"}, {Index: 3, Type: "int"}}}
	spec, info, err = compileSyscallMapping(sys, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Args) != 2 || spec.Args[0].Source != sensor.SrcRegUstr || spec.Args[1].Reg != 3 || len(info.event.Args) != 2 {
		t.Fatalf("syscall mapping: args %+v order %+v", spec.Args, info.event.Args)
	}
	// a uprobe reads registers: only the declared non-nop ones
	up := Decl{Kind: hookevent.KindUprobe, Call: "f", Path: "/bin/true", Args: []tp.ArgSpec{{Index: 5, Type: "nop"}, {Index: 0, Type: "int64"}}}
	kspec, _, err = compileUprobe(up, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(kspec.Args) != 1 || kspec.Params != 1 {
		t.Fatalf("uprobe: spec %+v", kspec)
	}
	// still one declaration per index
	fd.Args = append(fd.Args, tp.ArgSpec{Index: 0, Type: "int"})
	if _, _, err := compileSyscallMapping(fd, 1, "test"); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Fatalf("mapping, index 0 declared twice: %v", err)
	}
	if _, _, err := compileKprobe(fd, 1, testFuncs, nil); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Fatalf("kprobe, index 0 declared twice: %v", err)
	}
}

// syscall64 is read from tracepoints only; elsewhere it is refused where
// the hook is compiled, naming the type.
func TestSyscall64Refused(t *testing.T) {
	for _, d := range []Decl{
		{Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: "syscall64"}}},
		{Call: "sys_openat", Syscall: true, Args: []tp.ArgSpec{{Index: 0, Type: "syscall64"}}},
	} {
		if _, _, err := compileSyscallMapping(d, 1, "test"); err == nil || !strings.Contains(err.Error(), "syscall64 is read from tracepoints only") {
			t.Errorf("mapping %s: %v", d.Call, err)
		}
	}
	d := Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: "syscall64"}}}
	if _, _, err := compileKprobe(d, 1, testFuncs, nil); err == nil || !strings.Contains(err.Error(), "syscall64 is read from tracepoints only") {
		t.Errorf("kprobe: %v", err)
	}
	if _, _, err := compileUprobe(Decl{Kind: hookevent.KindUprobe, Call: "f", Path: "/bin/true", Args: d.Args}, 1); err == nil || !strings.Contains(err.Error(), "syscall64 is read from tracepoints only") {
		t.Errorf("uprobe: %v", err)
	}
}
