package tracingpolicy

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
)

// ErrFuncNotFound is wrapped by Kernel.Func when the kernel has no function
// of that name.
var ErrFuncNotFound = errors.New("kernel function not found")

// Kernel describes the running kernel's functions, for ValidateKernel.
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
	case TypeKiocb:
		return ptrTo("struct kiocb")
	case TypeSocket:
		return ptrTo("struct socket")
	case TypeUserNamespace:
		return ptrTo("struct user_namespace")
	case TypeBpfAttr:
		return ptrTo("union bpf_attr")
	case TypeFd:
		return c.Kind == CInt, "an integer"
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

// ValidateKernel checks the policy's kernel hooks against the running
// kernel's function prototypes: the functions exist, declared argument
// indexes exist, and each argument type fits the parameter's C type (file
// needs struct file *, int needs an integer, ...). It returns notes about
// what it could not check, and an *ErrorList of problems.
//
// System calls are only checked for existence: their entry points take
// struct pt_regs, so BTF does not describe their arguments. Tracepoints and
// uprobes are not checked here.
func (p *TracingPolicy) ValidateKernel(k Kernel) (notes []string, err error) {
	errs := &ErrorList{}
	for _, kp := range p.Spec.KProbes {
		if kp.List != "" {
			notes = append(notes, fmt.Sprintf("%s: the functions of list %q are checked when the policy is loaded", kp.Src, kp.List))
			continue
		}
		if kp.Syscall {
			name := syscallSymbolPrefix() + kp.SyscallName()
			if _, err := k.Func(name); err != nil {
				notes = append(notes, missing(errs, kp.Src, kp.IgnoreCallNotFound, "system call "+kp.SyscallName(), name, err)...)
				continue
			}
			if len(kp.Args) > 0 {
				notes = append(notes, fmt.Sprintf("%s: argument types of system call %s are not checked (its entry point %s takes struct pt_regs)", kp.Src, kp.SyscallName(), name))
			}
			continue
		}
		proto, err := k.Func(kp.Call)
		if err != nil {
			notes = append(notes, missing(errs, kp.Src, kp.IgnoreCallNotFound, "function "+kp.Call, kp.Call, err)...)
			continue
		}
		checkArgs(errs, proto, kp.Call, kp.Args)
		if kp.ReturnArg != nil {
			checkReturn(errs, proto, kp.Call, *kp.ReturnArg)
		}
	}
	for _, l := range p.Spec.LsmHooks {
		// BPF LSM programs attach to the bpf_lsm_<hook> stubs, which carry
		// the hook's prototype.
		name := "bpf_lsm_" + l.Hook
		proto, err := k.Func(name)
		if err != nil {
			notes = append(notes, missing(errs, l.Src, false, "LSM hook "+l.Hook, name, err)...)
			continue
		}
		checkArgs(errs, proto, "LSM hook "+l.Hook, l.Args)
	}
	if n := len(p.Spec.Tracepoints); n > 0 {
		notes = append(notes, fmt.Sprintf("%s: %d tracepoint(s) not checked against the kernel", p.Src.File, n))
	}
	if n := len(p.Spec.UProbes); n > 0 {
		notes = append(notes, fmt.Sprintf("%s: %d uprobe(s) not checked against the kernel", p.Src.File, n))
	}
	slices.SortStableFunc(errs.Errors, func(a, b FieldError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return notes, errs.err()
}

// missing records a hook whose function the kernel lacks: an error, or a
// note when the hook says to ignore it.
func missing(errs *ErrorList, src Source, ignore bool, what, symbol string, err error) []string {
	if !errors.Is(err, ErrFuncNotFound) {
		errs.Errors = append(errs.Errors, src.Errorf("looking up %s: %v", symbol, err))
		return nil
	}
	if ignore {
		return []string{fmt.Sprintf("%s: %s not found in the kernel (%s); skipped as ignore.callNotFound asks", src, what, symbol)}
	}
	errs.Errors = append(errs.Errors, src.Errorf("%s not found in the kernel (no %s)", what, symbol))
	return nil
}

func checkArgs(errs *ErrorList, proto FuncProto, what string, args []ArgSpec) {
	for _, a := range args {
		if int(a.Index) >= len(proto.Params) {
			errs.Errors = append(errs.Errors, a.Src.Errorf("index %d is out of range: %s has %d parameters%s", a.Index, what, len(proto.Params), describeParams(proto)))
			continue
		}
		param := proto.Params[a.Index]
		if ok, need := fits(a.Type, param.Type); !ok {
			errs.Errors = append(errs.Errors, a.TypeSrc.Errorf("type %s does not fit parameter %d of %s (%s): %s needs %s",
				a.Type, a.Index, what, param, a.Type, need))
		}
	}
}

func checkReturn(errs *ErrorList, proto FuncProto, what string, a ArgSpec) {
	if proto.Return.Kind == CVoid {
		errs.Errors = append(errs.Errors, a.Src.Errorf("%s returns void", what))
		return
	}
	if ok, need := fits(a.Type, proto.Return); !ok {
		errs.Errors = append(errs.Errors, a.TypeSrc.Errorf("type %s does not fit the return type of %s (%s): %s needs %s", a.Type, what, proto.Return, a.Type, need))
	}
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

func describeParams(proto FuncProto) string {
	var s []string
	for _, p := range proto.Params {
		s = append(s, p.String())
	}
	return " (" + strings.Join(s, ", ") + ")"
}
