package hooks

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
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
