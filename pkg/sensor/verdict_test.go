package sensor

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestMountMakersEmptyVerdictCache: a call that makes mounts bumps the
// verdict cache's generation. The cache keys a file by its mount's
// address, and a mount namespace's mounts are freed when its last task
// exits, which no system call marks: a mount made later at a freed one's
// address may show the same dentry at another path. A new namespace (a
// clone or clone3 with CLONE_NEWNS) and a detached tree (open_tree,
// fsmount) make mounts. Other processes' renames and deletions bump the
// generation too, so on a busy host this can pass without the calls'
// bumps; on a quiet one it fails without them.
func TestMountMakersEmptyVerdictCache(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	dir := t.TempDir()
	_, gen := cacheGeneration(t, dir)
	child := func(attr *syscall.SysProcAttr) func() error {
		return func() error {
			cmd := exec.Command("true")
			cmd.SysProcAttr = attr
			return cmd.Run()
		}
	}
	var pidfd int
	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"clone with CLONE_NEWNS", child(&syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS})},
		// a pidfd makes Go fork with clone3
		{"clone3 with CLONE_NEWNS", child(&syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS, PidFD: &pidfd})},
		{"open_tree", func() error {
			fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
		{"fsmount", func() error {
			fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
			if err != nil {
				return err
			}
			defer unix.Close(fs)
			if err := unix.FsconfigCreate(fs); err != nil {
				return err
			}
			fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
	} {
		before := gen()
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if gen() == before {
			t.Errorf("%s left the verdict cache's generation at %d", c.name, before)
		}
	}
	if pidfd > 0 {
		unix.Close(pidfd)
	}
}

// TestUringChangesEmptyVerdictCache: io_uring renames and deletes files
// without a system call of its own, in its worker thread; its requests'
// submission and completion bump the generation as the calls' entry and
// exit do.
func TestUringChangesEmptyVerdictCache(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	dir := t.TempDir()
	h, gen := cacheGeneration(t, dir)
	if h.d.uring == nil {
		t.Skip("the kernel has no io_uring tracepoints (CONFIG_IO_URING)")
	}
	a, b := dir+"/a", dir+"/b"
	writeX(t, a)
	for _, c := range []struct {
		name string
		do   func()
		gone string // the path the request removed
	}{
		{"IORING_OP_RENAMEAT", func() { testutil.UringRename(t, a, b) }, a},
		{"IORING_OP_UNLINKAT", func() { testutil.UringUnlink(t, b) }, b},
	} {
		before := gen()
		c.do()
		if _, err := os.Stat(c.gone); !os.IsNotExist(err) {
			t.Fatalf("%s: %s is still there (%v)", c.name, c.gone, err)
		}
		// at submission and at completion
		if got := gen(); got < before+2 {
			t.Errorf("%s moved the verdict cache's generation from %d to %d, want 2 bumps", c.name, before, got)
		}
	}
}

// cacheGeneration serves a hook that watches nothing in dir, from a
// dispatcher of its own (any hook: the dispatcher's programs are attached
// with the first), and returns it with a reader of the verdict cache's
// generation.
func cacheGeneration(t *testing.T, dir string) (*DataHook, func() uint64) {
	t.Helper()
	h := addHook(t, HookSpec{ID: 1, Syscalls: openFamily, Args: openArgs(), Selectors: []Selector{{
		Matches: []Match{{Kind: MatchArg, Arg: 1, Op: OpEqual, Strings: []string{dir + "/none"}}},
	}}}, newRing(t))
	return h, func() uint64 {
		t.Helper()
		var g uint64
		if err := h.d.objs.Generation.Lookup(uint32(0), &g); err != nil {
			t.Fatal(err)
		}
		return g
	}
}
