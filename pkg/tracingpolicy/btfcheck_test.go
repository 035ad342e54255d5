package tracingpolicy

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// kernelBTF loads the running kernel's BTF; the kernel checks need it.
func kernelBTF(t *testing.T) *BTFKernel {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); errors.Is(err, os.ErrNotExist) {
		t.Skip("the running kernel has no BTF (/sys/kernel/btf/vmlinux): CONFIG_DEBUG_INFO_BTF is off")
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	return NewBTFKernel(spec)
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

// kernel_cap_t is an anonymous struct behind its typedef since Linux 6.3
// (struct kernel_cap_struct before): the cap types fit its pointer by the
// typedef's name, and nothing else.
func TestBTFKernelCapT(t *testing.T) {
	k := kernelBTF(t)
	proto, err := k.Func("security_capset")
	if err != nil {
		t.Fatal(err)
	}
	if len(proto.Params) != 5 {
		t.Fatalf("security_capset: %+v", proto)
	}
	for _, typ := range []ArgType{TypeKernelCapT, TypeCapInheritable, TypeCapPermitted, TypeCapEffective} {
		if ok, need := ArgFits(typ, proto.Params[2].Type); !ok {
			t.Errorf("%s does not fit %s: needs %s", typ, proto.Params[2], need)
		}
		if ok, _ := ArgFits(typ, proto.Params[0].Type); ok {
			t.Errorf("%s fits %s", typ, proto.Params[0])
		}
	}
}
