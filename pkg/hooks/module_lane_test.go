package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// moduleHelperEnv makes the test binary a helper that loads the kernel
// module file its value names (finit_module) and unloads it again
// (delete_module).
const moduleHelperEnv = "TETRAGON_HOOKS_MODULE_HELPER"

// testModuleDir is where the kernel lanes put a module of their kernel
// (scripts/lane/run.sh): crc7, signed by Debian, needed by no other module.
const testModuleDir = "/lib/test-modules"

func moduleHelper() (code int, ok bool) {
	path := os.Getenv(moduleHelperEnv)
	if path == "" {
		return 0, false
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Println(err)
		return 1, true
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil {
		fmt.Println("finit_module:", err)
		return 1, true
	}
	name := strings.TrimSuffix(filepath.Base(path), ".ko")
	if err := unix.DeleteModule(name, unix.O_NONBLOCK); err != nil {
		fmt.Println("delete_module:", err)
		return 1, true
	}
	fmt.Println("survived")
	return 0, true
}

// The hooks of monitor-kernel-modules.yaml that read a module.
const modulePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "kernel-modules"
spec:
  kprobes:
  - call: "do_init_module"
    syscall: false
    args:
    - index: 0
      type: "module"
  - call: "free_module"
    syscall: false
    args:
    - index: 0
      type: "module"
`

// Loading a module reports it from do_init_module, unloading it from
// free_module: its name, its verified signature (Debian signs its modules)
// and no taint. A command that loads none gives no event.
func TestModuleHooks(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	ko := filepath.Join(testModuleDir, "crc7.ko")
	if _, err := os.Stat(ko); err != nil {
		t.Fatalf("no module of this kernel to load (the kernel lanes pack one): %v", err)
	}
	if _, err := os.Stat("/sys/module/crc7"); err == nil {
		t.Fatal("crc7 is loaded already: its load would not be seen")
	}
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	// two hooks: loadWith's check of the mechanism is for one
	if _, err := h.tryLoad(t, modulePolicy, compiler.MechKprobe); err != nil {
		t.Fatal(err)
	}
	h.run(t, "cat", "/proc/modules")
	if out, err := h.helperOutput(t, moduleHelperEnv, ko); err != nil || !strings.HasPrefix(out, "survived") {
		t.Fatalf("helper: %v: %s", err, out)
	}
	wantEvents(t, h.events(t),
		"helper do_init_module POST module:crc7/signature_ok=true/tainted=[]",
		"helper free_module POST module:crc7/signature_ok=true/tainted=[]")
}
