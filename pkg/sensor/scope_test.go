package sensor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/bpf"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// testCgroups mounts the cgroup v2 hierarchy under a temporary directory
// (the host has it at /sys/fs/cgroup/unified, a qemu lane's guest nowhere)
// and creates n cgroups in it, removed with the test. It returns their
// directories.
func testCgroups(t *testing.T, n int) []string {
	t.Helper()
	root := t.TempDir()
	if err := unix.Mount("none", root, "cgroup2", 0, ""); err != nil {
		t.Fatalf("mounting cgroup2: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	var dirs []string
	for i := range n {
		d := filepath.Join(root, fmt.Sprintf("tetragon-test-scope-%d-%d", os.Getpid(), i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("creating cgroup: %v", err)
		}
		// after the processes in it have exited (they are waited for)
		t.Cleanup(func() { os.Remove(d) })
		dirs = append(dirs, d)
	}
	return dirs
}

// cgroupID is the id bpf_get_current_cgroup_id returns for processes of
// the cgroup at dir: the inode number of its directory.
func cgroupID(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// catIn runs cat on path in the cgroup at dir (clone3 into the cgroup:
// no moment outside it).
func catIn(t *testing.T, dir, path string) {
	t.Helper()
	if out, err := runCatIn(t, dir, path); err != nil {
		t.Fatalf("cat %s in %s: %v %s", path, dir, err, out)
	}
}

func runCatIn(t *testing.T, dir, path string) ([]byte, error) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("cat", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	return cmd.CombinedOutput()
}

// TestGenericCgroupScope checks a scoped hook (a policy's podSelector,
// containerSelector or namespace) in the kernel: its selector matches the
// calls of the processes of the cgroups it is given only, follows a change
// of them, and a miss in one cgroup is not remembered by the verdict cache
// for another (the same file, the same list).
func TestGenericCgroupScope(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	cgs := testCgroups(t, 2)
	a, b := cgroupID(t, cgs[0]), cgroupID(t, cgs[1])
	file := filepath.Join(t.TempDir(), "watched")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// the opened file, as fd_install: a selector the verdict cache would
	// serve if the hook were not scoped (opens, not reads: busybox's cat,
	// in the qemu lanes, copies with sendfile)
	spec := HookSpec{
		ID:       3,
		Syscalls: openFamily,
		Args:     openArgs(),
		Selectors: []Selector{{
			Matches: []Match{{Kind: MatchArg, Arg: 1, Op: OpEqual, Strings: []string{file}}},
			Actions: 0,
		}},
		Scoped: true,
	}
	if !cacheable(HookSpec{Args: spec.Args, Selectors: spec.Selectors, Syscalls: spec.Syscalls}) {
		t.Fatal("the unscoped hook is not cacheable: the test would not check the cache")
	}
	h := addHook(t, spec, newRing(t))
	matched := func() uint64 {
		t.Helper()
		st, err := h.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.Matched
	}
	// no cgroups yet: nothing matches, the test's own process neither
	catIn(t, cgs[0], file)
	if m := matched(); m != 0 {
		t.Fatalf("a scoped hook with no cgroups matched %d opens", m)
	}
	if err := h.SetCgroups([]uint64{a}); err != nil {
		t.Fatal(err)
	}
	// b first: a miss that the cache must not keep for a
	for range 2 {
		catIn(t, cgs[1], file)
		catIn(t, cgs[0], file)
	}
	if out, err := exec.Command("cat", file).CombinedOutput(); err != nil {
		t.Fatalf("cat: %v %s", err, out)
	}
	// cat opens the file once (a loader might open it too: counted per run)
	perCat := matched() / 2
	if perCat == 0 || matched() != 2*perCat {
		t.Fatalf("%d opens matched, want those of the 2 cats in cgroup a", matched())
	}
	if err := h.SetCgroups([]uint64{b}); err != nil {
		t.Fatal(err)
	}
	catIn(t, cgs[0], file)
	catIn(t, cgs[1], file)
	if m := matched(); m != 3*perCat {
		t.Fatalf("%d opens matched, want %d: those of the one cat in b after the change", m, 3*perCat)
	}
	st, err := h.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Cached != 0 {
		t.Fatalf("the verdict cache decided %d calls of a scoped hook's list", st.Cached)
	}
	// removing the hook removes its cgroups
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	var key bpf.HookCgroupKey
	var val uint8
	if it := h.d.objs.HookCgroups.Iterate(); it.Next(&key, &val) {
		t.Fatalf("the closed hook left a cgroup entry %+v", key)
	}
}

// TestKprobeCgroupScope is TestGenericCgroupScope's check on a hook of its
// own object (bpf/hook.c): a scoped Sigkill on fd_install kills in the
// cgroup it is given only.
func TestKprobeCgroupScope(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	cgs := testCgroups(t, 2)
	target, _ := twoFiles(t)
	k, err := LoadProgHook(ProgHookSpec{
		ID: 4, Symbol: "fd_install", Params: 2, Args: fdInstallArgs, Scoped: true,
		Selectors: []Selector{{
			Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{target}}},
			Actions: ActSigkill,
		}},
	}, newRing(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := k.SetCgroups([]uint64{cgroupID(t, cgs[0])}); err != nil {
		t.Fatal(err)
	}
	if out, err := runCatIn(t, cgs[1], target); err != nil || string(out) != "x" {
		t.Fatalf("cat %s in the other cgroup: %v %q, want untouched", target, err, out)
	}
	if out, err := runCatIn(t, cgs[0], target); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s in the hook's cgroup: %v %q, want killed", target, err, out)
	}
	if out, err := exec.Command("cat", target).CombinedOutput(); err != nil || string(out) != "x" {
		t.Fatalf("cat %s outside both: %v %q, want untouched", target, err, out)
	}
}
