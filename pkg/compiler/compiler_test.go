package compiler

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// runningKernel is the running kernel as a caller gives it to the
// compiler: its BTF, which /sys/kernel/btf/vmlinux lets any user read.
func runningKernel() Facts {
	spec, err := btf.LoadKernelSpec()
	return Facts{Kernel: spec, KernelErr: err}
}

// TestHook: the entry point picks the mechanism from the features and
// hands back the one spec that mechanism loads; the kernel's BTF is needed
// only by hooks that read prototypes, which fail with the reason it is
// missing.
func TestHook(t *testing.T) {
	kprobes := map[string]bool{kernelfeatures.Kprobe: true, kernelfeatures.Kretprobe: true}
	d := Decl{Policy: "p", Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "file"}},
		Scope: &Scope{Namespace: "default"}}

	c, err := Hook(d, 7, Facts{KernelErr: errors.New("no BTF here")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Syscalls == nil || c.Progs != nil || c.Syscalls.ID != 7 || !c.Syscalls.Scoped ||
		c.Event.Mechanism != MechSyscallTracepoint || c.Event.Policy != "p" || len(c.Event.Args) != 2 {
		t.Fatalf("without kprobes: %+v", c)
	}

	_, err = Hook(d, 7, Facts{Features: kprobes, KernelErr: errors.New("no BTF here")})
	if err == nil || err.Error() != "fd_install: loading kernel BTF for function prototypes: no BTF here" {
		t.Fatalf("kprobe without BTF: error %v", err)
	}
	if _, err := Hook(d, 7, Facts{Features: kprobes}); err == nil || !strings.Contains(err.Error(), "not given") {
		t.Fatalf("kprobe with no BTF given: error %v", err)
	}

	facts := runningKernel()
	facts.Features = kprobes
	c, err = Hook(d, 8, facts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Syscalls != nil || len(c.Progs) != 1 || c.Progs[0].ID != 8 || c.Progs[0].Symbol != "fd_install" || !c.Progs[0].Scoped ||
		c.Event.Mechanism != MechKprobe {
		t.Fatalf("kprobe: %+v", c)
	}

	// a uprobe reads registers: no BTF needed
	u := Decl{Kind: hookevent.KindUprobe, Call: "main", Path: "/bin/sh", Args: []tp.ArgSpec{{Index: 0, Type: "int"}}}
	c, err = Hook(u, 9, Facts{Features: map[string]bool{kernelfeatures.Uprobe: true}, KernelErr: errors.New("no BTF here")})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Progs) != 1 || c.Progs[0].Attach != sensor.AttachUprobe || c.Progs[0].Scoped || c.Event.Mechanism != MechUprobe {
		t.Fatalf("uprobe: %+v", c)
	}
}
