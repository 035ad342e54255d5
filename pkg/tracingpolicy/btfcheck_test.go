package tracingpolicy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kernelBTF loads the running kernel's BTF; the kernel checks need it.
func kernelBTF(t *testing.T) *BTFKernel {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); errors.Is(err, os.ErrNotExist) {
		t.Skip("the running kernel has no BTF (/sys/kernel/btf/vmlinux): CONFIG_DEBUG_INFO_BTF is off")
	}
	k, err := LoadKernelBTF()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestBTFFuncProto(t *testing.T) {
	k := kernelBTF(t)
	proto, err := k.Func("fd_install")
	if err != nil {
		t.Fatal(err)
	}
	if len(proto.Params) != 2 || proto.Return.Kind != CVoid {
		t.Fatalf("fd_install: %+v", proto)
	}
	fd, file := proto.Params[0], proto.Params[1]
	if fd.Type.Kind != CInt || fd.Type.Size != 4 || fd.String() != "unsigned int fd" {
		t.Errorf("fd_install parameter 0: %+v (%s)", fd, fd)
	}
	if file.Type.Kind != CPointer || file.Type.Pointee != "struct file" || file.String() != "struct file *file" {
		t.Errorf("fd_install parameter 1: %+v (%s)", file, file)
	}
	// Qualifiers and typedefs are looked through.
	proto, err = k.Func("security_path_truncate")
	if err != nil {
		t.Fatal(err)
	}
	if p := proto.Params[0]; p.Type.Pointee != "struct path" || p.String() != "const struct path *path" || proto.Return.C != "int" {
		t.Errorf("security_path_truncate: %+v returns %+v", p, proto.Return)
	}
	if _, err := k.Func("no_such_function_in_any_kernel"); !errors.Is(err, ErrFuncNotFound) {
		t.Errorf("missing function: %v", err)
	}
	// A BTF type that is not a function.
	if _, err := k.Func("task_struct"); !errors.Is(err, ErrFuncNotFound) {
		t.Errorf("struct name: %v", err)
	}
}

// The seeds and every shipped policy fit this kernel's prototypes.
func TestKernelAcceptsPolicies(t *testing.T) {
	k := kernelBTF(t)
	files, _ := filepath.Glob("../../policies/*.yaml")
	examples, _ := filepath.Glob("../../policies/examples/*.yaml")
	files = append(files, examples...)
	files = append(files, "testdata/enforcement.yaml", "testdata/file_monitoring.yaml")
	for _, f := range files {
		pols, err := ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		notes, err := pols[0].ValidateKernel(k)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		for _, n := range notes {
			// tracepoints are checked when they load (pkg/hooks), against
			// the format files
			if !strings.Contains(n, "are not checked (its entry point __x64_sys_") && !strings.Contains(n, "tracepoint(s) not checked against the kernel") {
				t.Errorf("%s: unexpected note %q", f, n)
			}
		}
	}
}

func TestKernelRejects(t *testing.T) {
	k := kernelBTF(t)
	cases := []struct {
		name, body string
		want       string
		note       string
	}{
		{"file on fd_install's fd", `  kprobes:
  - call: fd_install
    syscall: false
    args:
    - {index: 0, type: file}
    - {index: 1, type: file}
`, `x.yaml:10:24: spec.kprobes[0].args[0].type: type file does not fit parameter 0 of fd_install (unsigned int fd): file needs struct file *`, ""},
		{"int on a pointer", `  kprobes:
  - call: fd_install
    syscall: false
    args: [{index: 1, type: int}]
`, `x.yaml:9:29: spec.kprobes[0].args[0].type: type int does not fit parameter 1 of fd_install (struct file *file): int needs an integer`, ""},
		{"path on a file", `  kprobes:
  - call: security_file_permission
    syscall: false
    args: [{index: 0, type: path}]
`, `x.yaml:9:29: spec.kprobes[0].args[0].type: type path does not fit parameter 0 of security_file_permission (struct file *file): path needs struct path *`, ""},
		{"index past the parameters", `  kprobes:
  - call: fd_install
    syscall: false
    args: [{index: 3, type: int}]
`, `x.yaml:9:12: spec.kprobes[0].args[0]: index 3 is out of range: fd_install has 2 parameters (unsigned int fd, struct file *file)`, ""},
		{"returnArg on a void function", `  kprobes:
  - call: fd_install
    syscall: false
    return: true
    returnArg: {index: 0, type: int}
`, `x.yaml:10:16: spec.kprobes[0].returnArg: fd_install returns void`, ""},
		{"returnArg type", `  kprobes:
  - call: security_file_permission
    syscall: false
    return: true
    returnArg: {index: 0, type: file}
`, `x.yaml:10:33: spec.kprobes[0].returnArg.type: type file does not fit the return type of security_file_permission (int): file needs struct file *`, ""},
		{"missing function", `  kprobes:
  - call: no_such_function_in_any_kernel
    syscall: false
`, `x.yaml:7:5: spec.kprobes[0]: function no_such_function_in_any_kernel not found in the kernel (no no_such_function_in_any_kernel)`, ""},
		{"missing function ignored", `  kprobes:
  - call: no_such_function_in_any_kernel
    syscall: false
    ignore: {callNotFound: true}
`, "", `x.yaml:7:5: spec.kprobes[0]: function no_such_function_in_any_kernel not found in the kernel (no_such_function_in_any_kernel); skipped as ignore.callNotFound asks`},
		{"missing system call", `  kprobes:
  - call: sys_no_such_call
`, `x.yaml:7:5: spec.kprobes[0]: system call no_such_call not found in the kernel (no __x64_sys_no_such_call)`, ""},
		{"LSM hook argument", `  lsmhooks:
  - hook: file_open
    args: [{index: 0, type: dentry}]
`, `x.yaml:8:29: spec.lsmhooks[0].args[0].type: type dentry does not fit parameter 0 of LSM hook file_open (struct file *file): dentry needs struct dentry *`, ""},
		{"missing LSM hook", `  lsmhooks:
  - hook: no_such_hook
`, `x.yaml:7:5: spec.lsmhooks[0]: LSM hook no_such_hook not found in the kernel (no bpf_lsm_no_such_hook)`, ""},
		{"string on a const char pointer", `  kprobes:
  - call: do_sys_openat2
    syscall: false
    args: [{index: 0, type: int}, {index: 1, type: string}]
`, "", ""},
		{"char_buf on a void pointer, size_t on size_t", `  kprobes:
  - call: kernel_read
    syscall: false
    args: [{index: 1, type: char_buf, sizeArgIndex: 3}, {index: 2, type: size_t}]
`, "", ""},
		{"sock", `  kprobes:
  - call: tcp_connect
    syscall: false
    args: [{index: 0, type: sock}]
`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := parseOne(t, header+c.body)
			notes, err := p.ValidateKernel(k)
			got := ""
			if err != nil {
				var list *ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("%T is not an *ErrorList", err)
				}
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, c.want)
			}
			if strings.Join(notes, "\n") != c.note {
				t.Errorf("notes: %q, want %q", notes, c.note)
			}
		})
	}
}

func TestFits(t *testing.T) {
	ptr := func(to string) CType { return CType{Kind: CPointer, Pointee: to, C: to + " *"} }
	integer := CType{Kind: CInt, Size: 4, C: "int"}
	cases := []struct {
		t    ArgType
		c    CType
		want bool
	}{
		{TypeInt, integer, true}, {TypeFd, integer, true}, {TypeUint64, integer, true},
		{TypeInt, ptr("struct file"), false}, {TypeFd, ptr("struct file"), false},
		{TypeUint64, ptr("struct file"), true}, {TypeUint32, ptr("struct file"), false},
		{TypeFile, ptr("struct file"), true}, {TypeFile, ptr("struct path"), false}, {TypeFile, integer, false},
		{TypePath, ptr("struct path"), true}, {TypeDentry, ptr("struct dentry"), true},
		{TypeString, ptr("char"), true}, {TypeString, ptr("void"), false},
		{TypeCharBuf, ptr("void"), true}, {TypeCharBuf, ptr("unsigned char"), true},
		{TypeFilename, ptr("struct filename"), true}, {TypeSock, ptr("struct sock"), true},
		{TypeSock, ptr("struct socket"), false}, {TypeSkb, ptr("struct sk_buff"), true},
		{TypeSockaddr, ptr("struct sockaddr"), true},
		{TypeNop, CType{Kind: COther}, true}, {TypeInt, CType{Kind: COther}, false},
	}
	for _, c := range cases {
		if got, _ := fits(c.t, c.c); got != c.want {
			t.Errorf("fits(%s, %s) = %v, want %v", c.t, c.c, got, c.want)
		}
	}
}
