package compiler

import (
	"strings"
	"testing"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// A resolve path the kernel's BTF contradicts, or on an argument without
// a BTF type, is refused when the hook is compiled, saying why; the
// syscall-tracepoint mapping refuses resolve. The kprobe compilation uses
// the running kernel's BTF, without attaching.
func TestResolveRefused(t *testing.T) {
	funcs, err := kernelFuncs(runningKernel())
	if err != nil {
		t.Skipf("kernel lacks BTF: %v", err)
	}
	bprm := func(typ, path string) Decl {
		return Decl{Call: "security_bprm_check", Args: []tp.ArgSpec{{Index: 0, Type: tp.ArgType(typ), Resolve: path}}}
	}
	for _, c := range []struct {
		name string
		d    Decl
		want string
	}{
		{"no such member", bprm("path", "file.f_nosuch"), `security_bprm_check: argument 0: resolve "file.f_nosuch": struct file has no member f_nosuch`},
		{"type does not fit", bprm("path", "file.f_path.dentry"), `security_bprm_check: argument 0: resolve "file.f_path.dentry" ends at struct dentry *, and type path needs struct path *`},
		{"system call", Decl{Call: "sys_openat", Syscall: true, Args: []tp.ArgSpec{{Index: 0, Type: "int", Resolve: "x"}}},
			"sys_openat: argument 0: resolve follows the parameter's BTF type, which only kernel functions, LSM hooks and raw tracepoints declare"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := compileKprobe(c.d, 1, funcs, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("compile: %v\nwant an error containing %q", err, c.want)
			}
		})
	}
	spec, _, err := compileKprobe(bprm("int", "cred.euid.val"), 1, funcs, nil)
	if err != nil || len(spec.Args) != 1 || len(spec.Args[0].Resolve) != 2 || spec.Args[0].Resolve[1].Load != 4 {
		t.Fatalf("cred.euid.val: %+v %v", spec.Args, err)
	}
	_, _, err = compileSyscallMapping(bprm("path", "file.f_path"), 1, "test")
	if err == nil || !strings.Contains(err.Error(), "resolve follows the parameter's BTF type from a kernel function, which the syscall-tracepoint mechanism does not call") {
		t.Fatalf("mapping: %v", err)
	}
}
