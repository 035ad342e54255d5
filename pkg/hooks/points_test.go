package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// openatKill is a policy on the syscalls/sys_enter_openat tracepoint that
// kills the opener of one path (%[3]s) and reports the opens of another
// (%[4]s): every policy of this shape is data in one object.
const openatKill = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %[5]q
spec:
  tracepoints:
  - subsystem: "syscalls"
    event: "sys_enter_openat"
    args:
    - index: 6
      type: "string"
    selectors:
    - matchArgs:
      - index: 6
        operator: "Equal"
        values:
        - "%[2]s/%[3]s"
      matchActions:
      - action: Sigkill
    - matchArgs:
      - index: 6
        operator: "Equal"
        values:
        - "%[2]s/%[4]s"
`

// TestPointShared loads many policies hooking one tracepoint, pinned: the first
// loads and attaches a program, the others are entries in its maps (the
// process holds no more programs or links), and each still enforces only
// its own selectors, through loads, a replacement and unloads. Once the
// last is unloaded, the object is gone, and no pin is left.
func TestPointShared(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	const n = 100
	if _, err := kernelfs.BPF().Ensure(); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(kernelfs.BPF().Path, fmt.Sprintf("tetragon-test-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.RemoveAll(root) })
	h := newHarness(t, compiler.MechTracepoint, testutil.Kernel(t).Map())
	h.m.PinUnder(root)
	files := map[string]string{"plain": "x", "new-50": "x"}
	for i := range n {
		files[fmt.Sprintf("forbidden-%d", i)] = "x"
		files[fmt.Sprintf("watched-%d", i)] = "w"
	}
	writeFiles(t, h.dir, files)
	load := func(i int, forbidden string) {
		t.Helper()
		p := h.parse(t, openatKill, compiler.MechTracepoint, forbidden, fmt.Sprintf("watched-%d", i), fmt.Sprintf("point-%d", i))
		if err := h.m.LoadPolicy(p); err != nil {
			t.Fatalf("policy %d: %v", i, err)
		}
	}
	progs0, links0 := ownBPF(t)
	load(0, "forbidden-0")
	progs, links := ownBPF(t)
	if progs != progs0+1 || links != links0+1 {
		t.Fatalf("the first policy: %d programs and %d links, want %d and %d", progs, links, progs0+1, links0+1)
	}
	for i := 1; i < n; i++ {
		load(i, fmt.Sprintf("forbidden-%d", i))
	}
	if p, l := ownBPF(t); p != progs || l != links {
		t.Fatalf("%d policies on one tracepoint: %d programs and %d links, want %d and %d", n, p, l, progs, links)
	}
	cat := func(name string, wantKilled bool) {
		t.Helper()
		if _, killed := h.run(t, "cat", filepath.Join(h.dir, name)); killed != wantKilled {
			t.Errorf("cat %s: killed %v, want %v", name, killed, wantKilled)
		}
	}
	cat("forbidden-0", true)
	cat("forbidden-99", true)
	cat("watched-7", false)
	cat("plain", false)
	wantEvents(t, h.events(t),
		"cat syscalls/sys_enter_openat SIGKILL string:$DIR/forbidden-0",
		"cat syscalls/sys_enter_openat SIGKILL string:$DIR/forbidden-99",
		"cat syscalls/sys_enter_openat POST string:$DIR/watched-7")
	for _, p := range h.m.Status() {
		if p.Name == "point-0" || p.Name == "point-99" {
			st := p.Hooks[0].Stats
			t.Logf("policy %s: %d calls, %d matched, %d bytes of kernel memory", p.Name, st.Calls, st.Matched, st.MemoryBytes)
			if st.Matched != 1 || st.Calls == 0 {
				t.Errorf("policy %s: %d calls and %d matched, want some and 1", p.Name, st.Calls, st.Matched)
			}
		}
	}

	// a new version of policy 50 replaces the old one in the list
	p := h.parse(t, openatKill, compiler.MechTracepoint, "new-50", "watched-50", "point-50")
	if err := h.m.ReplacePolicy(p); err != nil {
		t.Fatal(err)
	}
	cat("forbidden-50", false)
	cat("new-50", true)
	if err := h.m.Unload("point-0"); err != nil {
		t.Fatal(err)
	}
	cat("forbidden-0", false)
	cat("forbidden-1", true)
	if p, l := ownBPF(t); p != progs || l != links {
		t.Fatalf("after a replacement and an unload: %d programs and %d links, want %d and %d", p, l, progs, links)
	}
	h.events(t)

	for i := 1; i < n; i++ {
		if err := h.m.Unload(fmt.Sprintf("point-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if p, l := ownBPF(t); p != progs0 || l != links0 {
		t.Fatalf("every policy unloaded: %d programs and %d links, want %d and %d", p, l, progs0, links0)
	}
	cat("forbidden-99", false)
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 0 {
		t.Fatalf("pins left under %s after every policy was unloaded: %v %v", root, entries, err)
	}
}
