package compiler

import (
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// data: entries compile to record slots after the arguments', read from
// the current task (sensor.RegTask) through the resolve path the kernel's
// BTF gives; a path or type the BTF contradicts is refused, and so is the
// syscall-tracepoint mapping, which has no task to start from. Compiled
// with the running kernel's BTF, without attaching.
func TestDataCompile(t *testing.T) {
	funcs, err := kernelFuncs(runningKernel())
	if err != nil {
		t.Skipf("kernel lacks BTF: %v", err)
	}
	connect := func(typ, path string, sels ...tp.Selector) Decl {
		return Decl{Call: "security_socket_connect",
			Args:      []tp.ArgSpec{{Index: 1, Type: tp.TypeSockaddr}},
			Data:      []tp.ArgSpec{{Index: 0, Type: tp.ArgType(typ), Resolve: path, Label: "x"}},
			Selectors: sels}
	}
	md := tp.ArgSelector{Index: 0, Operator: tp.OpNotEqual, ArgType: tp.TypeUint32, Values: []string{"0"}, IntValues: []int64{0}}
	spec, info, err := compileKprobe(connect("uint32", "cred.euid.val", tp.Selector{MatchData: []tp.ArgSelector{md}}), 1, funcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Args) != 2 || spec.Args[1].Reg != sensor.RegTask || spec.Args[1].Source != sensor.SrcReg ||
		len(spec.Args[1].Resolve) != 2 || spec.Args[1].Resolve[0].Load != 8 || spec.Args[1].Resolve[1].Load != 4 || spec.Params != 2 {
		t.Fatalf("args %+v (params %d)", spec.Args, spec.Params)
	}
	if len(info.event.Args) != 2 || info.event.Args[1].Label != "x" || info.event.DataArgs != 1 {
		t.Fatalf("event args %+v", info.event.Args)
	}
	if m := spec.Selectors[0].Matches; len(m) != 1 || m[0].Arg != 1 || m[0].Op != sensor.OpNotEqual {
		t.Fatalf("matches %+v", m)
	}
	for _, c := range []struct {
		name string
		d    Decl
		want string
	}{
		{"no such member", connect("uint32", "cred.nosuch"), `security_socket_connect: data[0] (source current_task): argument 0: resolve "cred.nosuch": struct cred has no member nosuch`},
		{"type does not fit", connect("string", "cred.euid.val"), `security_socket_connect: data[0] (source current_task): argument 0: resolve "cred.euid.val" ends at`},
		{"too many", Decl{Call: "security_socket_connect",
			Args: []tp.ArgSpec{{Index: 0, Type: "int64"}, {Index: 1, Type: "int64"}, {Index: 2, Type: "int"}},
			Data: []tp.ArgSpec{{Index: 0, Type: "int", Resolve: "pid"}, {Index: 1, Type: "int", Resolve: "tgid"}, {Index: 2, Type: "int", Resolve: "pid"}}},
			"security_socket_connect: 6 arguments and data entries, at most 5 together"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := compileKprobe(c.d, 1, funcs, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("compile: %v\nwant an error containing %q", err, c.want)
			}
		})
	}
	_, _, err = compileSyscallMapping(Decl{Call: "sys_connect", Syscall: true, Data: connect("uint32", "cred.euid.val").Data}, 1, "test")
	if err == nil || !strings.Contains(err.Error(), "sys_connect: data: entries read the current task from a kernel function's probe, which the syscall-tracepoint mechanism does not have; it serves this hook because test") {
		t.Fatalf("mapping: %v", err)
	}
}
