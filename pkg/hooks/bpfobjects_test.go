package hooks

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

const bpfMapPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "bpf-objects"
spec:
  kprobes:
  - call: "%[3]s"
    syscall: false
    args:
    - index: 0
      type: "bpf_map"
  - call: "security_perf_event_alloc"
    syscall: false
    args:
    - index: 0
      type: "perf_event"
`

// TestBpfMapPerfEvent: the argument types bpf_map and perf_event report
// the map the test creates (type, sizes, name) and the kprobe perf event
// it opens (the kprobe PMU, the function), through Tetragon's bpf.yaml
// hooks.
func TestBpfMapPerfEvent(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	funcs, err := kernelFuncs()
	if err != nil {
		t.Fatal(err)
	}
	// Linux 6.9 replaced security_bpf_map_alloc(map) by
	// security_bpf_map_create(map, attr, token)
	alloc := "security_bpf_map_alloc"
	if _, err := funcs.Func(alloc); err != nil {
		alloc = "security_bpf_map_create"
	}
	if err := h.m.LoadPolicy(h.parse(t, bpfMapPolicy, "", alloc)); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	// the second hook's own maps, created once the first one was
	// attached, are reported too: left out
	h.events(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "exb_test_map", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 7})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	l, err := link.Kprobe("vfs_fsync", prog, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	wantEvents(t, h.events(t),
		"test "+alloc+" POST bpfmap:BPF_MAP_TYPE_HASH/4/8/7/exb_test_map",
		"test security_perf_event_alloc POST perfevent:kprobe/vfs_fsync/0x0/0x0")
}

// Tetragon's bpf.yaml loads with its three hooks (bpf_attr, perf_event,
// bpf_map) where the kernel has its security_bpf_map_alloc (before 6.9).
func TestBpfExample(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	funcs, err := kernelFuncs()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := funcs.Func("security_bpf_map_alloc"); err != nil {
		t.Skipf("kernel lacks security_bpf_map_alloc (Linux 6.9 renamed it security_bpf_map_create): %v", err)
	}
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	ps, err := tp.ParseFile("../../test/testdata/tetragon/examples/tracingpolicy/bpf.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadPolicy(ps[0]); err != nil {
		t.Fatal(err)
	}
	if st := h.m.Status(); len(st) != 1 || len(st[0].Hooks) != 3 {
		t.Fatalf("status %+v, want one policy with three hooks", st)
	}
}

// kernelFuncs reads the running kernel's function prototypes, from its
// BTF, as the manager gives them to the compiler.
func kernelFuncs() (*tp.BTFKernel, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, err
	}
	return tp.NewBTFKernel(spec), nil
}
