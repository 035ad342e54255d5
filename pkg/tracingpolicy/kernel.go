package tracingpolicy

import (
	"errors"
	"runtime"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// ErrFuncNotFound is wrapped by Kernel.Func when the kernel has no function
// of that name.
var ErrFuncNotFound = errors.New("kernel function not found")

// Kernel describes the running kernel's functions, which the compiler
// checks a hook's arguments against.
type Kernel interface {
	// Func returns the prototype of kernel function name, or an error
	// wrapping ErrFuncNotFound.
	Func(name string) (FuncProto, error)
}

// FuncProto is a kernel function's prototype.
type FuncProto struct {
	Name   string
	Params []Param
	Return CType
}

// Param is one parameter of a FuncProto.
type Param struct {
	Name string
	Type CType
	// BTF is the parameter's type as the kernel's BTF has it, for resolve
	// paths; nil where the prototype does not come from BTF.
	BTF btf.Type
}

// CKind is the shape of a C type, after typedefs and qualifiers.
type CKind int

// C type shapes.
const (
	CVoid    CKind = iota
	CInt           // integers, enums and bool
	CPointer       // pointers
	COther         // anything else (structs by value, floats, arrays)
)

// CType is a C type as far as argument checks care.
type CType struct {
	Kind CKind
	// Size in bytes, for integers.
	Size int
	// Pointee names a pointer's target after typedefs and qualifiers:
	// "struct file", "char", "void", ...
	Pointee string
	// C spells the type as the kernel source does, for messages.
	C string
}

func (c CType) String() string { return c.C }

// fits reports whether an argument of type t can be read from a parameter of
// C type c, and if not, what t needs.
func fits(t ArgType, c CType) (bool, string) {
	ptrTo := func(names ...string) (bool, string) {
		if c.Kind == CPointer && slices.Contains(names, c.Pointee) {
			return true, ""
		}
		return false, names[0] + " *"
	}
	switch t {
	case TypeNop:
		return true, ""
	case TypeString:
		return ptrTo("char", "signed char", "unsigned char")
	case TypeCharBuf:
		return ptrTo("char", "void", "signed char", "unsigned char")
	case TypeFilename:
		return ptrTo("struct filename")
	case TypeFile:
		return ptrTo("struct file")
	case TypePath:
		return ptrTo("struct path")
	case TypeDentry:
		return ptrTo("struct dentry")
	case TypeSock:
		return ptrTo("struct sock")
	case TypeSkb:
		return ptrTo("struct sk_buff")
	case TypeSockaddr:
		return ptrTo("struct sockaddr")
	case TypeLinuxBinprm:
		return ptrTo("struct linux_binprm")
	case TypeCred:
		return ptrTo("struct cred")
	case TypeNetDevice:
		return ptrTo("struct net_device")
	case TypeDns:
		return ptrTo("struct msghdr")
	case TypeKiocb:
		return ptrTo("struct kiocb")
	case TypeIovIter:
		return ptrTo("struct iov_iter")
	case TypeSocket:
		return ptrTo("struct socket")
	case TypeUserNamespace:
		return ptrTo("struct user_namespace")
	case TypeBpfAttr:
		return ptrTo("union bpf_attr")
	case TypeBpfMap:
		return ptrTo("struct bpf_map")
	case TypePerfEvent:
		return ptrTo("struct perf_event")
	case TypeModule:
		return ptrTo("struct module")
	case TypeFd:
		return c.Kind == CInt, "an integer"
	}
	if t.CapSet() {
		return capSetFits(c)
	}
	if t.Class() == ClassInt {
		// A 64-bit integer may also carry a pointer's value (an address).
		return c.Kind == CInt || c.Kind == CPointer && t.Size() == 8, "an integer"
	}
	return false, "a type this agent cannot read"
}

// ArgFits reports whether an argument of type t can be read from a
// parameter of C type c, and if not, what t needs. Hook compilers use it to
// refuse, at load, a hook whose arguments the kernel's prototype
// contradicts.
func ArgFits(t ArgType, c CType) (bool, string) { return fits(t, c) }

// SyscallSymbol is the kernel symbol of system call name's entry point on
// this architecture (__x64_sys_openat for openat on amd64).
func SyscallSymbol(name string) string { return syscallSymbolPrefix() + name }

// syscallSymbolPrefix is the prefix of the kernel's system call entry
// points on this architecture.
func syscallSymbolPrefix() string {
	switch runtime.GOARCH {
	case "amd64":
		return "__x64_sys_"
	case "arm64":
		return "__arm64_sys_"
	}
	return "sys_"
}

// String spells the parameter as a C declaration ("struct file *file").
func (p Param) String() string {
	if p.Name == "" {
		return p.Type.C
	}
	if strings.HasSuffix(p.Type.C, "*") {
		return p.Type.C + p.Name
	}
	return p.Type.C + " " + p.Name
}
