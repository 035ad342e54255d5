package hooks

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// capsetHelperEnv: call capset(2) with the thread's own sets, its
// effective set keeping CAP_SYS_ADMIN ("admin") or without it ("noadmin"),
// and print "survived <errno> <effective set as 16 hex digits>".
const capsetHelperEnv = "TETRAGON_HOOKS_CAPSET_HELPER"

func capsetHelper(mode string) int {
	runtime.LockOSThread() // capset sets the calling thread's sets
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		fmt.Println("capget:", err)
		return 1
	}
	if mode == "noadmin" {
		data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
	}
	eff := uint64(data[1].Effective)<<32 | uint64(data[0].Effective)
	errno := unix.Errno(0)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		errno = err.(unix.Errno)
	}
	fmt.Printf("survived %d %016x\n", errno, eff)
	return 0
}

// Tetragon's deny-privileged-containers.yml, for the test's own helpers
// (matchPIDs) instead of runc: the capset LSM hook reads its effective set
// (kernel_cap_t), CapabilityMask CAP_SYS_ADMIN matches a set that keeps
// it, and Override makes capset fail with EPERM; the second selector posts
// any other capset of the helpers, so the set read is seen either way.
const capsetPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "capset-enforcement"
spec:
  lsmhooks:
  - hook: "capset"
    args:
    - index: 2
      type: "kernel_cap_t"
    selectors:
    - matchActions:
      - action: Post
      - action: Override
        argError: -1
      matchPIDs:
      - operator: In
        followForks: true
        values:
        - %[3]d
      matchArgs:
      - operator: CapabilityMask
        index: 2
        values:
        - "CAP_SYS_ADMIN"
    - matchPIDs:
      - operator: In
        followForks: true
        values:
        - %[3]d
`

func TestLSMCapsetKernelCapT(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "bpf_lsm")
	h := newHarness(t, compiler.MechLSM, testutil.Kernel(t).Map())
	h.loadWith(t, capsetPolicy, compiler.MechLSM, os.Getpid())
	run := func(mode string) (errno, set string) {
		t.Helper()
		out, err := h.helperOutput(t, capsetHelperEnv, mode)
		if err != nil {
			t.Fatalf("capset helper %s: %v: %q", mode, err, out)
		}
		f := strings.Fields(out)
		if len(f) != 3 || f[0] != "survived" {
			t.Fatalf("capset helper %s: %q", mode, out)
		}
		return f[1], f[2]
	}
	errno, set := run("admin")
	if errno != fmt.Sprint(int(unix.EPERM)) {
		t.Fatalf("capset keeping CAP_SYS_ADMIN: errno %s, want EPERM (%d)", errno, unix.EPERM)
	}
	errno, noadmin := run("noadmin")
	if errno != "0" {
		t.Fatalf("capset without CAP_SYS_ADMIN: errno %s, want success", errno)
	}
	wantEvents(t, h.events(t), "helper capset OVERRIDE caps:"+set, "helper capset POST caps:"+noadmin)
}
