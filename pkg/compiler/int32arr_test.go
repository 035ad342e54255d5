package compiler

import (
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// The compilers read an int32_arr from the caller's memory at return for
// returnCopy, and refuse it where they cannot.
func TestCompileInt32Arr(t *testing.T) {
	funcs := fakeKernel{
		"fd_install":      testFuncs["fd_install"],
		"__x64_sys_pipe2": {Name: "__x64_sys_pipe2", Params: []tp.Param{{Name: "regs", Type: cRegs}}, Return: tp.CType{Kind: tp.CInt, Size: 8, C: "long"}},
	}
	arr := tp.ArgSpec{Index: 0, Type: tp.TypeInt32Arr, Size: 2, ReturnCopy: true}
	d := Decl{Call: "sys_pipe2", Syscall: true, Args: []tp.ArgSpec{arr}}
	spec, _, err := compileSyscallMapping(d, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	nr := syscallNumbers()["pipe2"]
	if len(spec.Args) != 1 || spec.Args[0].Source != sensor.SrcRegI32Arr || spec.Args[0].Count != 2 || spec.Syscalls[nr].Flags != sensor.OnExit {
		t.Fatalf("mapping: args %+v syscalls %+v", spec.Args, spec.Syscalls)
	}
	kspec, _, err := compileKprobe(d, 1, funcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !kspec.Return || kspec.Args[0].Source != sensor.SrcRegI32Arr {
		t.Fatalf("kprobe: %+v", kspec)
	}
	// without returnCopy, read at entry
	d.Args[0].ReturnCopy = false
	if spec, _, _ = compileSyscallMapping(d, 1, "test"); spec.Syscalls[nr].Flags != sensor.OnEnter {
		t.Fatalf("mapping without returnCopy: %+v", spec.Syscalls)
	}
	if kspec, _, _ = compileKprobe(d, 1, funcs, nil); kspec.Return {
		t.Fatalf("kprobe without returnCopy runs at return")
	}
	// a kernel function's pointer is no user array the kernel fills
	fd := Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: tp.TypeInt32Arr, Size: 2}}}
	if _, _, err := compileKprobe(fd, 1, funcs, nil); err == nil {
		t.Fatal("int32_arr on fd_install's int compiled")
	}
	// the kernel reads at most MaxInt32Arr elements, as the parser allows
	if sensor.MaxInt32Arr != tp.MaxInt32ArrSize {
		t.Fatalf("kernel reads %d int32_arr elements, the parser allows %d", sensor.MaxInt32Arr, tp.MaxInt32ArrSize)
	}
}
