package hooks

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// pipeHelperEnv makes the test binary a helper that creates two pipes with
// pipe2 and two socket pairs with socketpair, and prints their fds.
const pipeHelperEnv = "TETRAGON_HOOKS_PIPE_HELPER"

// pipeFlagsWatched are the pipe2 flags the test policy selects: O_DIRECT
// (a packet pipe) is in no pipe2 call of the Go runtime.
const pipeFlagsWatched = syscall.O_CLOEXEC | syscall.O_DIRECT

func pipeHelper() (code int, ok bool) {
	if os.Getenv(pipeHelperEnv) == "" {
		return 0, false
	}
	var out []string
	for _, flags := range []int{pipeFlagsWatched, syscall.O_CLOEXEC} {
		var p [2]int
		if err := syscall.Pipe2(p[:], flags); err != nil {
			fmt.Println("pipe2:", err)
			return 1, true
		}
		out = append(out, fmt.Sprint(p[0], p[1]))
	}
	for _, typ := range []int{syscall.SOCK_DGRAM, syscall.SOCK_STREAM} {
		p, err := syscall.Socketpair(syscall.AF_UNIX, typ, 0)
		if err != nil {
			fmt.Println("socketpair:", err)
			return 1, true
		}
		out = append(out, fmt.Sprint(p[0], p[1]))
	}
	fmt.Println("survived", strings.Join(out, " "))
	return 0, true
}

const int32ArrPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "int32-arr"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "sys_pipe2"
    syscall: true
    args:
    - index: 0
      type: "int32_arr"
      size: 2
      returnCopy: true
      label: "pipefd"
    - index: 1
      type: "int"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[3]d"
  - call: "sys_socketpair"
    syscall: true
    args:
    - index: 0
      type: "int"
    - index: 1
      type: "int"
    - index: 3
      type: "int32_arr"
      size: 2
      returnCopy: true
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "2" # SOCK_DGRAM
`

// int32_arr with returnCopy reads the fds pipe2 and socketpair filled in,
// at the call's return, on every mechanism; the calls the selectors do not
// match (other flags, another socket type) give no event.
func TestInt32ArrReturnCopy(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		h := newHarness(t, mech, testutil.Kernel(t).Map())
		// two hooks: loadWith's check of the mechanism is for one
		if _, err := h.tryLoad(t, int32ArrPolicy, mech, pipeFlagsWatched); err != nil {
			t.Fatal(err)
		}
		out, err := h.helperOutput(t, pipeHelperEnv, "1")
		if err != nil {
			t.Fatalf("helper: %v: %s", err, out)
		}
		var fds [8]int
		if _, err := fmt.Sscanf(out, "survived %d %d %d %d %d %d %d %d", &fds[0], &fds[1], &fds[2], &fds[3], &fds[4], &fds[5], &fds[6], &fds[7]); err != nil {
			t.Fatalf("helper output %q: %v", out, err)
		}
		events := h.events(t)
		wantEvents(t, events,
			fmt.Sprintf("helper sys_pipe2 POST int32s:[%d %d] int:%d", fds[0], fds[1], pipeFlagsWatched),
			fmt.Sprintf("helper sys_socketpair POST int:1 int:2 int32s:[%d %d]", fds[4], fds[5]))
		k := events[0].kprobe
		if k.GetReturn() != nil || k.GetArgs()[0].GetLabel() != "pipefd" {
			t.Fatalf("pipe2 event: return %v (no return: true), label %q", k.GetReturn(), k.GetArgs()[0].GetLabel())
		}
	})
}

// The compilers read an int32_arr from the caller's memory at return for
// returnCopy, and refuse it where they cannot.
func TestCompileInt32Arr(t *testing.T) {
	funcs := fakeKernel{
		"fd_install":      testFuncs["fd_install"],
		"__x64_sys_pipe2": {Name: "__x64_sys_pipe2", Params: []tp.Param{{Name: "regs", Type: cRegs}}, Return: tp.CType{Kind: tp.CInt, Size: 8, C: "long"}},
	}
	arr := tp.ArgSpec{Index: 0, Type: tp.TypeInt32Arr, Size: 2, ReturnCopy: true}
	d := HookDecl{Call: "sys_pipe2", Syscall: true, Args: []tp.ArgSpec{arr}}
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
	fd := HookDecl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: tp.TypeInt32Arr, Size: 2}}}
	if _, _, err := compileKprobe(fd, 1, funcs, nil); err == nil {
		t.Fatal("int32_arr on fd_install's int compiled")
	}
	// the kernel reads at most MaxInt32Arr elements, as the parser allows
	if sensor.MaxInt32Arr != tp.MaxInt32ArrSize {
		t.Fatalf("kernel reads %d int32_arr elements, the parser allows %d", sensor.MaxInt32Arr, tp.MaxInt32ArrSize)
	}
}
