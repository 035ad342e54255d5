package compiler

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// fakeKernel answers prototype queries from a fixed table.
type fakeKernel map[string]tp.FuncProto

func (k fakeKernel) Func(name string) (tp.FuncProto, error) {
	p, ok := k[name]
	if !ok {
		return tp.FuncProto{}, fmt.Errorf("%s: %w", name, tp.ErrFuncNotFound)
	}
	return p, nil
}

var (
	cUint     = tp.CType{Kind: tp.CInt, Size: 4, C: "unsigned int"}
	cInt      = tp.CType{Kind: tp.CInt, Size: 4, C: "int"}
	cFile     = tp.CType{Kind: tp.CPointer, Pointee: "struct file", C: "struct file *"}
	cPath     = tp.CType{Kind: tp.CPointer, Pointee: "struct path", C: "const struct path *"}
	cRegs     = tp.CType{Kind: tp.CPointer, Pointee: "struct pt_regs", C: "const struct pt_regs *"}
	testFuncs = fakeKernel{
		"fd_install":               {Name: "fd_install", Params: []tp.Param{{Name: "fd", Type: cUint}, {Name: "file", Type: cFile}}},
		"security_file_permission": {Name: "security_file_permission", Params: []tp.Param{{Name: "file", Type: cFile}, {Name: "mask", Type: cInt}}, Return: cInt},
		"security_path_truncate":   {Name: "security_path_truncate", Params: []tp.Param{{Name: "path", Type: cPath}}, Return: cInt},
		"__x64_sys_openat":         {Name: "__x64_sys_openat", Params: []tp.Param{{Name: "regs", Type: cRegs}}, Return: tp.CType{Kind: tp.CInt, Size: 8, C: "long"}},
	}
)

func TestCompileKprobe(t *testing.T) {
	d := Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 1, Type: "file"}, {Index: 0, Type: "int"}},
		Selectors: []tp.Selector{{
			MatchArgs:    []tp.ArgSelector{{Index: 1, Operator: "Equal", Values: []string{"/tmp/tetragon"}}},
			MatchActions: []tp.ActionSelector{{Action: "Sigkill"}},
		}}}
	spec, info, err := compileKprobe(d, 9, testFuncs, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []sensor.Arg{{Source: sensor.SrcRegKFile, Reg: 1, Kind: sensor.KindPath}, {Source: sensor.SrcReg, Reg: 0, Kind: sensor.KindInt, Size: 4, Signed: true}}
	if spec.ID != 9 || spec.Symbol != "fd_install" || spec.Syscall || spec.Params != 2 || spec.Override || info.event.Mechanism != MechKprobe ||
		!reflect.DeepEqual(spec.Args, want) {
		t.Fatalf("spec %+v info %+v", spec, info)
	}
	// matchArgs index 1 is record slot 0: the declaration order
	if m := spec.Selectors[0].Matches[0]; m.Arg != 0 || m.Op != sensor.OpEqual || spec.Selectors[0].Actions != sensor.ActPost|sensor.ActSigkill {
		t.Fatalf("selector %+v", spec.Selectors[0])
	}

	sys := Decl{Call: "sys_openat", Syscall: true, Return: true, Args: []tp.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "string"}, {Index: 2, Type: "fd"}}}
	spec, _, err = compileKprobe(sys, 1, testFuncs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Symbol != "__x64_sys_openat" || !spec.Syscall || spec.SyscallNr != 257 || !spec.Return || spec.Params != 3 ||
		spec.Args[1].Source != sensor.SrcRegUstr || spec.Args[2].Source != sensor.SrcRegFile || spec.Args[2].Kind != sensor.KindFD {
		t.Fatalf("syscall spec %+v", spec)
	}

	path := Decl{Call: "security_path_truncate", Args: []tp.ArgSpec{{Index: 0, Type: "path"}}}
	if spec, _, err = compileKprobe(path, 1, testFuncs, nil); err != nil || spec.Args[0].Source != sensor.SrcRegKPath {
		t.Fatalf("path arg: %+v %v", spec, err)
	}
}

func TestCompileKprobeOverride(t *testing.T) {
	d := Decl{Call: "security_file_permission", Args: []tp.ArgSpec{{Index: 0, Type: "file"}},
		Selectors: []tp.Selector{{MatchActions: []tp.ActionSelector{{Action: "Override", ArgError: -1}}}}}
	spec, info, err := compileKprobe(d, 1, testFuncs, map[string]bool{"kprobe": true, "fmod_ret": true})
	if err != nil {
		t.Fatal(err)
	}
	if !spec.Override || info.event.Mechanism != MechFmodRet || spec.Selectors[0].Error != -1 || spec.Selectors[0].Actions&sensor.ActOverride == 0 {
		t.Fatalf("spec %+v info %+v", spec, info)
	}
	if _, _, err := compileKprobe(d, 1, testFuncs, map[string]bool{"kprobe": true}); err == nil || !strings.Contains(err.Error(), "probe feature fmod_ret") {
		t.Fatalf("Override without fmod_ret: %v", err)
	}
}

func TestCompileKprobeErrors(t *testing.T) {
	for name, c := range map[string]struct {
		d    Decl
		want string
	}{
		"type mismatch":  {Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: "file"}}}, "type file does not fit parameter 0 (unsigned int): file needs struct file *"},
		"index range":    {Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 2, Type: "int"}}}, "the function has 2 parameters"},
		"unknown":        {Decl{Call: "no_such_function"}, "kernel function not found"},
		"char_buf":       {Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 1, Type: "char_buf"}}}, "type char_buf does not fit"},
		"syscall file":   {Decl{Call: "sys_openat", Syscall: true, Args: []tp.ArgSpec{{Index: 1, Type: "file"}}}, `type "file" cannot be read from a system call`},
		"unknown sys":    {Decl{Call: "sys_openat2", Syscall: true}, "system call openat2"},
		"duplicate":      {Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: "int"}, {Index: 0, Type: "int"}}}, "declared twice"},
		"unsupported op": {Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: "int"}}, Selectors: []tp.Selector{{MatchArgs: []tp.ArgSelector{{Index: 0, Operator: "Prefix", Values: []string{"1"}}}}}}, "operator Prefix needs a string or path argument"},
	} {
		_, _, err := compileKprobe(c.d, 1, testFuncs, map[string]bool{"kprobe": true})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", name, err, c.want)
		}
		if name == "unknown" && !errors.Is(err, tp.ErrFuncNotFound) {
			t.Errorf("unknown function: %v does not wrap ErrFuncNotFound", err)
		}
	}
}

func TestChooseMechanism(t *testing.T) {
	kp := map[string]bool{"kprobe": true, "kretprobe": true, "tp_btf": true}
	host := map[string]bool{"tp_btf": true}
	for _, c := range []struct {
		option  string
		ret     bool
		feats   map[string]bool
		want    string
		wantErr string
	}{
		{"", false, kp, MechKprobe, ""},
		{"auto", true, kp, MechKprobe, ""},
		{"", false, host, MechSyscallTracepoint, ""},
		{"auto", true, map[string]bool{"kprobe": true}, MechSyscallTracepoint, ""},
		{"syscall-tracepoint", false, kp, MechSyscallTracepoint, ""},
		{"kprobe", false, kp, MechKprobe, ""},
		{"kprobe", false, host, "", "asks for hook-mechanism kprobe, and this kernel has no kprobes (probe feature kprobe)"},
		{"kprobe", true, map[string]bool{"kprobe": true}, "", "no kretprobes (probe feature kretprobe)"},
		{"fentry", false, kp, "", `unknown hook-mechanism "fentry"`},
	} {
		mech, why, err := chooseMechanism(Decl{Call: "fd_install", Return: c.ret, Mechanism: c.option}, c.feats)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q on %v: %q %v, want error %q", c.option, c.feats, mech, err, c.wantErr)
			}
			continue
		}
		if err != nil || mech != c.want || (mech == MechSyscallTracepoint) != (why != "") {
			t.Errorf("%q on %v: %q (%q) %v, want %q", c.option, c.feats, mech, why, err, c.want)
		}
	}
}

func TestFromPolicyHookMechanism(t *testing.T) {
	p := parse(t, strings.Replace(killOpen, "%s", "options:\n  - name: hook-mechanism\n    value: syscall-tracepoint", 1))
	d, err := FromPolicy(p, false)
	if err != nil {
		t.Fatal(err)
	}
	if d[0].Mechanism != MechSyscallTracepoint {
		t.Fatalf("mechanism %q, want the option's", d[0].Mechanism)
	}
}
