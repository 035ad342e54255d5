package hooks

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// stackProbe is a function whose address the symbolizer must name.
//
//go:noinline
func stackProbe() uintptr {
	pc, _, _, _ := runtime.Caller(0)
	return pc
}

// The symbolizer on this process's own code (its ELF symbols, through
// /proc/self's mappings) and on a kernel text symbol from /proc/kallsyms.
func TestSymbolizer(t *testing.T) {
	s := newSymbolizer()
	pc := uint64(stackProbe())
	fn := runtime.FuncForPC(uintptr(pc))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got := s.user(uint32(os.Getpid()), []uint64{pc, 1})
	want := fn.Name()
	if got[0].GetSymbol() != want || got[0].GetOffset() != pc-uint64(fn.Entry()) || got[0].GetModule() != exe || got[0].GetAddress() != pc {
		t.Errorf("user frame %+v, want symbol %s offset %d module %s", got[0], want, pc-uint64(fn.Entry()), exe)
	}
	if got[1].GetSymbol() != "" || got[1].GetModule() != "" || got[1].GetAddress() != 1 {
		t.Errorf("unmapped address: %+v, want the address alone", got[1])
	}
	// a process that is gone: addresses only
	if got := s.user(0, []uint64{pc}); got[0].GetSymbol() != "" || got[0].GetAddress() != pc {
		t.Errorf("no process: %+v", got[0])
	}
	// a function symbol's address in reflect terms agrees
	if p := uint64(reflect.ValueOf(TestSymbolizer).Pointer()); s.user(uint32(os.Getpid()), []uint64{p})[0].GetSymbol() != runtime.FuncForPC(uintptr(p)).Name() {
		t.Errorf("TestSymbolizer's entry not named")
	}

	testutil.RequireRoot(t) // kallsyms shows addresses to root only
	name, addr := firstKernelText(t)
	k := s.kernel([]uint64{addr, addr + 3})
	if k[0].GetSymbol() != name || k[0].GetOffset() != 0 || k[1].GetSymbol() != name && k[1].GetOffset() != 3 {
		t.Errorf("kernel frames %+v, want %s+0 and a symbol at +3", k, name)
	}
	if k[1].GetOffset() > 3 || k[1].GetAddress() != addr+3 {
		t.Errorf("kernel frame %+v", k[1])
	}
}

// firstKernelText returns a global text symbol of the running kernel.
func firstKernelText(t *testing.T) (string, uint64) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Skipf("no /proc/kallsyms: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[1] == "T" && fields[2] == "vfs_read" {
			a, _ := strconv.ParseUint(fields[0], 16, 64)
			if a == 0 {
				t.Fatal("kallsyms hides addresses from root")
			}
			return fields[2], a
		}
	}
	t.Fatal("vfs_read not in /proc/kallsyms")
	return "", 0
}

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
	h := newHarness(t, MechKprobe, testutil.Kernel(t).Map())
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

// FuzzStackInputs: the parsers of what stack symbolisation and the skb
// argument read never panic, and a parsed mapping is a file's address
// range.
func FuzzStackInputs(f *testing.F) {
	f.Add("00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon\n7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]\n")
	f.Add("55d0-55e0 r--p 0000 fe:00 12 /a b c\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range parseMaps(s) {
			if !strings.HasPrefix(m.path, "/") {
				t.Fatalf("%q: mapping of %q", s, m.path)
			}
		}
		skb := skbArg([]byte(s))
		if len(s) < 64 && (skb.GetLen() != 0 || skb.GetFamily() != "") {
			t.Fatalf("%q: short skb data decoded as %v", s, skb)
		}
		sockArg([]byte(s))
	})
}
