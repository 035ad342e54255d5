package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// stackPolicy posts fd_install with kernel and user stack traces, for
// files of the test directory.
const stackPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "stacks"
spec:
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: Prefix
        values: ["%[2]s/"]
      matchActions:
      - action: Post
        kernelStackTrace: true
        userStackTrace: true
`

// kernelStackTrace and userStackTrace on a kprobe: this process opens a
// file, and the event names fd_install's kernel callers (the openat system
// call's path) and, in user space, the Go function that opened it, in this
// test binary.
func TestStackTraces(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	writeFiles(t, h.dir, map[string]string{"data": "x"})
	if err := h.m.LoadPolicy(h.parse(t, stackPolicy, "")); err != nil {
		t.Fatal(err)
	}
	openForStack(t, filepath.Join(h.dir, "data"))
	var kps []*api.ProcessKprobe
	for _, e := range h.events(t) {
		if e.kprobe != nil {
			kps = append(kps, e.kprobe)
		}
	}
	if len(kps) != 1 {
		t.Fatalf("%d fd_install events, want 1", len(kps))
	}
	kernel, user := frames(kps[0].GetKernelStackTrace()), frames(kps[0].GetUserStackTrace())
	t.Logf("kernel stack: %s", strings.Join(kernel, " < "))
	t.Logf("user stack: %s", strings.Join(user, " < "))
	if len(kernel) == 0 || !strings.HasPrefix(kernel[0], "fd_install+") {
		t.Errorf("kernel stack %q does not start at fd_install", kernel)
	}
	if !slices.ContainsFunc(kernel, func(f string) bool { return strings.Contains(f, "openat") }) {
		t.Errorf("kernel stack %q has no openat frame", kernel)
	}
	exe, _ := os.Executable()
	if !slices.ContainsFunc(kps[0].GetUserStackTrace(), func(e *api.StackTraceEntry) bool {
		return strings.HasSuffix(e.GetSymbol(), ".openForStack") && e.GetModule() == exe
	}) {
		t.Errorf("user stack %q has no frame of openForStack in %s", user, exe)
	}
}

//go:noinline
func openForStack(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func frames(st []*api.StackTraceEntry) []string {
	var out []string
	for _, e := range st {
		out = append(out, fmt.Sprintf("%s+%d", e.GetSymbol(), e.GetOffset()))
	}
	return out
}
