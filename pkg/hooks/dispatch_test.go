package hooks

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// shaped parses shaped policy i, served through the syscall dispatcher,
// on paths under the test's directory.
func (h *harness) shaped(t testing.TB, i int) *tp.TracingPolicy {
	return h.shapedForbidding(t, i, fmt.Sprintf("%s/forbidden-%d", h.dir, i))
}

func (h *harness) shapedForbidding(t testing.TB, i int, forbidden string) *tp.TracingPolicy {
	t.Helper()
	doc := testutil.ShapedPolicy(fmt.Sprintf("shape-%d", i), h.mech, fmt.Sprintf("%s/watched-%d/", h.dir, i), forbidden)
	ps, err := tp.Parse("policy.yaml", doc)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

// ownBPF counts this process's BPF program and link file descriptors: a
// program the verifier accepted is a new program descriptor, an attached
// one a new link. (Host-wide counts would see other processes' tests.)
func ownBPF(t *testing.T) (progs, links int) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		switch target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); target {
		case "anon_inode:bpf-prog":
			progs++
		case "anon_inode:bpf_link":
			links++
		}
	}
	return progs, links
}

// TestThousandPolicies loads 1,000 policies through the syscall
// dispatcher, and through kprobes. The 1,000th runs no verifier and
// attaches nothing: the process holds the same programs before and after
// it, and the host the same links (the dispatcher's two raw tracepoints,
// or one kprobe per function, whose object serves every policy's hook
// there). Every policy still enforces (the first's and the last's
// Sigkill), a call of an unmatched file is still one program run, and
// each policy costs the kernel at most 64 KiB.
func TestThousandPolicies(t *testing.T) {
	testutil.RequireRoot(t)
	for _, mech := range []string{compiler.MechSyscallTracepoint, compiler.MechKprobe} {
		t.Run(mech, func(t *testing.T) {
			testutil.RequireFeature(t, map[string]string{compiler.MechSyscallTracepoint: "tp_btf", compiler.MechKprobe: "kprobe"}[mech])
			thousandPolicies(t, mech)
		})
	}
}

func thousandPolicies(t *testing.T, mech string) {
	const n = 1000
	h := newHarness(t, mech, testutil.Kernel(t).Map())
	for _, i := range []int{0, n - 1} {
		writeFiles(t, h.dir, map[string]string{fmt.Sprintf("forbidden-%d", i): "x"})
	}
	writeFiles(t, h.dir, map[string]string{"plain": "x"})
	start := time.Now()
	for i := range n - 1 {
		if err := h.m.LoadPolicy(h.shaped(t, i)); err != nil {
			t.Fatalf("policy %d: %v", i, err)
		}
	}
	t.Logf("%d policies loaded in %v", n-1, time.Since(start).Round(time.Millisecond))
	progs, links := ownBPF(t)
	start = time.Now()
	if err := h.m.LoadPolicy(h.shaped(t, n-1)); err != nil {
		t.Fatalf("policy %d: %v", n-1, err)
	}
	t.Logf("policy %d loaded in %v", n, time.Since(start))
	if p, l := ownBPF(t); p != progs || l != links {
		t.Fatalf("loading policy %d: %d programs and %d links, %d and %d before", n, p, l, progs, links)
	}
	// kprobes: one object and link on each function; the dispatcher: per
	// direction the object's pass-every-call program (attached only where
	// a filter cannot be loaded), its run and the attached filter (the
	// chain's slot empty: the set never changed), and the two io_uring
	// programs, attached where the kernel has io_uring
	wantProgs, wantLinks := 2, 2
	if mech == compiler.MechSyscallTracepoint {
		wantProgs = 8
		kernel, err := btf.LoadKernelSpec()
		if err != nil {
			t.Fatal(err)
		}
		// io_uring_submit_sqe in older kernels, 6.1 among them
		var typedef *btf.Typedef
		if kernel.TypeByName("btf_trace_io_uring_submit_req", &typedef) == nil || kernel.TypeByName("btf_trace_io_uring_submit_sqe", &typedef) == nil {
			wantLinks = 4
		}
	}
	if progs != wantProgs || links != wantLinks {
		t.Errorf("%d BPF programs and %d links held for %d policies, want %d and %d", progs, links, n, wantProgs, wantLinks)
	}

	for _, i := range []int{0, n - 1} {
		if _, killed := h.run(t, "cat", fmt.Sprintf("forbidden-%d", i)); !killed {
			t.Errorf("cat forbidden-%d was not killed", i)
		}
	}
	if out, killed := h.run(t, "cat", "plain"); killed || out != "x" {
		t.Errorf("cat plain: %q, killed %v", out, killed)
	}

	status := h.m.Status()
	if len(status) != n {
		t.Fatalf("%d policies loaded, want %d", len(status), n)
	}
	for _, p := range status {
		var mem uint64
		for _, hk := range p.Hooks {
			if hk.Mechanism != mech {
				t.Fatalf("policy %s: hook %s served by %s", p.Name, hk.Call, hk.Mechanism)
			}
			mem += hk.Stats.MemoryBytes
		}
		if mem == 0 || mem > 64<<10 {
			t.Fatalf("policy %s: %d bytes of kernel memory, want at most 64 KiB", p.Name, mem)
		}
		if p.Name == "shape-0" {
			t.Logf("policy %s: %d bytes of kernel memory", p.Name, mem)
		}
	}

	// removing one policy in the middle leaves the others enforcing
	if err := h.m.Unload("shape-500"); err != nil {
		t.Fatal(err)
	}
	if _, killed := h.run(t, "cat", fmt.Sprintf("forbidden-%d", n-1)); !killed {
		t.Errorf("after an unload, cat forbidden-%d was not killed", n-1)
	}
	if p, l := ownBPF(t); p != progs || l != links {
		t.Fatalf("unloading a policy: %d programs and %d links, %d and %d before", p, l, progs, links)
	}
}

// TestDispatcherReplaceAndUnload replaces a policy served by the
// dispatcher and unloads it: the new version enforces, the old one no
// longer does, and after the unload nothing does.
func TestDispatcherReplaceAndUnload(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	h := newHarness(t, compiler.MechSyscallTracepoint, testutil.Kernel(t).Map())
	writeFiles(t, h.dir, map[string]string{"forbidden-1": "x", "forbidden-2": "x"})
	if err := h.m.LoadPolicy(h.shaped(t, 1)); err != nil {
		t.Fatal(err)
	}
	if _, killed := h.run(t, "cat", "forbidden-1"); !killed {
		t.Fatal("cat forbidden-1 was not killed")
	}
	// version 2 of policy "shape-1" forbids forbidden-2 instead
	v2 := h.shapedForbidding(t, 1, filepath.Join(h.dir, "forbidden-2"))
	if err := h.m.ReplacePolicy(v2); err != nil {
		t.Fatal(err)
	}
	if out, killed := h.run(t, "cat", "forbidden-1"); killed || out != "x" {
		t.Errorf("after the replace, cat forbidden-1: %q, killed %v", out, killed)
	}
	if _, killed := h.run(t, "cat", "forbidden-2"); !killed {
		t.Error("after the replace, cat forbidden-2 was not killed")
	}
	if err := h.m.Unload("shape-1"); err != nil {
		t.Fatal(err)
	}
	if out, killed := h.run(t, "cat", "forbidden-2"); killed || out != "x" {
		t.Errorf("after the unload, cat forbidden-2: %q, killed %v", out, killed)
	}
}

// TestVerdictCacheDentryReuse: the verdict cache remembers a file no hook
// matched by its dentry. A deleted file's dentry is freed, and the slab
// hands its memory to the next dentry allocated on that CPU, which may be
// a watched file's: the cache must not take that file for the deleted
// one. Each round reads a decoy (remembered as unmatched), deletes it and
// its directory, and creates and reads a watched file, on one CPU; every
// read of a watched file must be reported.
//
// Each round first creates a file that takes the inode and the number
// the decoy's directory freed, so that the watched file gets the decoy's
// (a file whose dentry already exists, negative, allocates none): on ext4,
// which gives a new file a freed number at once, 29 or 30 of 30 watched
// files have the decoy's number. Comparing the inode's address and number
// only, 18 to 25 of their reads were passed over. On overlayfs, where the
// generation did not tell them apart, 3 to 5 were passed over unless a
// deletion bumps the cache's generation. "read after unlink" reads the decoy
// through a descriptor opened before its deletion, after it: its dentry,
// inode and number are freed at the close, which marks nothing, and on
// overlayfs 5 or 6 reads were passed over unless a file without a name is
// never remembered.
func TestVerdictCacheDentryReuse(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	for _, c := range []struct {
		name                 string
		overlay, afterUnlink bool
	}{
		{"deleted", false, false},
		{"deleted on overlayfs", true, false},
		{"read after unlink", false, true},
		{"read after unlink on overlayfs", true, true},
	} {
		t.Run(c.name, func(t *testing.T) { verdictAfterReuse(t, c.overlay, c.afterUnlink) })
	}
}

func verdictAfterReuse(t *testing.T, overlay, afterUnlink bool) {
	h := newHarness(t, compiler.MechSyscallTracepoint, testutil.Kernel(t).Map())
	if overlay {
		// the harness's directory becomes an overlay, as a container's
		// root is
		layers := t.TempDir()
		for _, d := range []string{"lower", "upper", "work"} {
			if err := os.Mkdir(filepath.Join(layers, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		opts := fmt.Sprintf("lowerdir=%[1]s/lower,upperdir=%[1]s/upper,workdir=%[1]s/work", layers)
		if err := unix.Mount("overlay", h.dir, "overlay", 0, opts); err != nil {
			if errors.Is(err, unix.ENODEV) {
				t.Skip("kernel lacks overlayfs")
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(h.dir, unix.MNT_DETACH) })
	}
	watched := filepath.Join(h.dir, "watched-0")
	if err := os.Mkdir(watched, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadPolicy(h.shaped(t, 0)); err != nil {
		t.Fatal(err)
	}
	// one thread on one CPU: the freed dentry goes back to that CPU's slab
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// the thread goes back to the runtime's pool with the CPUs it had
	var all, cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &all)
	cpus.Set(0)
	if err := unix.SchedSetaffinity(0, &cpus); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	readFd := func(fd int) {
		var b [8]byte
		if _, err := unix.Pread(fd, b[:], 0); err != nil {
			t.Fatal(err)
		}
	}
	open := func(path string, flags int) int {
		fd, err := unix.Open(path, flags, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	create := func(path string) uint64 {
		fd := open(path, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR)
		defer unix.Close(fd)
		if _, err := unix.Write(fd, []byte("x")); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	const rounds = 30
	sameNumber := 0
	for i := range rounds {
		// a deleted file's dentry lives on, negative, until its
		// directory goes: rmdir frees it
		dir := filepath.Join(h.dir, fmt.Sprintf("d-%d", i))
		decoy := filepath.Join(dir, "decoy")
		hold := filepath.Join(watched, fmt.Sprintf("hold-%d", i))
		unix.Access(hold, unix.F_OK) // ENOENT, leaving hold's dentry
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		decoyNumber := create(decoy)
		fd := open(decoy, unix.O_RDONLY)
		if !afterUnlink {
			readFd(fd)
			readFd(fd)
		}
		if err := os.Remove(decoy); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if afterUnlink {
			readFd(fd)
			readFd(fd)
		}
		unix.Close(fd)
		// a dentry and an inode are freed after an RCU grace period
		time.Sleep(20 * time.Millisecond)
		create(hold) // the directory's inode and number
		target := filepath.Join(watched, fmt.Sprintf("t-%d", i))
		if create(target) == decoyNumber {
			sameNumber++
		}
		if err := readOnce(target); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d of %d watched files had the decoy's inode number", sameNumber, rounds)
	// a read's mask is MAY_READ (4)
	readOfTarget := regexp.MustCompile(`^test security_file_permission POST file:\$DIR/watched-0/(t-[0-9]+) int:4$`)
	reads := map[string]int{}
	for _, e := range h.events(t) {
		if m := readOfTarget.FindStringSubmatch(e.text); m != nil {
			reads[m[1]]++
		}
	}
	for i := range rounds {
		if reads[fmt.Sprintf("t-%d", i)] == 0 {
			t.Errorf("the read of watched-0/t-%d was not reported", i)
		}
	}
}

// TestVerdictCacheRoot: a path is resolved up to the reading task's root,
// a mount and a dentry, and two roots can share the dentry: two bind
// mounts of one directory. A task whose root is the outer mount reaches a
// file of the inner one by a longer path than a task whose root is the
// inner one, so the file can be unwatched for the first and watched for
// the second: a verdict remembered for the one must not pass for the
// other.
func TestVerdictCacheRoot(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	h := newHarness(t, compiler.MechSyscallTracepoint, testutil.Kernel(t).Map())
	// shared is the one directory both roots are: the watched file's path
	// inside it is the watched path outside it
	shared := filepath.Join(h.dir, "shared")
	outer, inner := filepath.Join(h.dir, "outer"), filepath.Join(h.dir, "outer", "inner")
	for _, d := range []string{filepath.Join(shared, h.dir, "watched-0"), filepath.Join(shared, "inner"), outer} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFiles(t, filepath.Join(shared, h.dir, "watched-0"), map[string]string{"file": "x"})
	bind := func(target string) {
		if err := unix.Mount(shared, target, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
		// the inner mount must not propagate back to shared
		if err := unix.Mount("", target, "", unix.MS_PRIVATE, ""); err != nil {
			t.Fatal(err)
		}
	}
	bind(outer)
	bind(inner)
	if err := h.m.LoadPolicy(h.shaped(t, 0)); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	// run last, once both threads are done
	t.Cleanup(func() {
		if root, err := os.Readlink("/proc/self/root"); root != "/" {
			t.Errorf("after the test, the process's root is %q (%v)", root, err)
		}
	})
	// both roots are taken before either read: a chroot empties the cache
	fromOuter := chrootedReader(t, outer)
	fromInner := chrootedReader(t, inner)
	if err := fromOuter(filepath.Join("/inner", h.dir, "watched-0/file")); err != nil {
		t.Fatal(err)
	}
	if err := fromInner(filepath.Join(h.dir, "watched-0/file")); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, h.events(t), "test security_file_permission POST file:$DIR/watched-0/file int:4")
}

// TestVerdictCacheUringRename: a file read (and remembered as
// unwatched) through a descriptor, renamed into the watched directory by
// io_uring, which makes no rename system call, is watched when read
// through the same descriptor again: the remembered verdict went with
// the rename's request.
func TestVerdictCacheUringRename(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	h := newHarness(t, compiler.MechSyscallTracepoint, testutil.Kernel(t).Map())
	plain, moved := filepath.Join(h.dir, "plain"), filepath.Join(h.dir, "watched-0", "moved")
	if err := os.Mkdir(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, h.dir, map[string]string{"plain": "x"})
	if err := h.m.LoadPolicy(h.shaped(t, 0)); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	fd, err := unix.Open(plain, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	read := func() {
		var b [8]byte
		if _, err := unix.Pread(fd, b[:], 0); err != nil {
			t.Fatal(err)
		}
	}
	read()
	read() // a remembered verdict
	testutil.UringRename(t, plain, moved)
	read()
	wantEvents(t, h.events(t), "test security_file_permission POST file:$DIR/watched-0/moved int:4")
}

// readOnce opens path and reads it with one call.
func readOnce(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var b [8]byte
	_, err = unix.Pread(fd, b[:], 0)
	return err
}

// chrootedReader starts a thread of its own whose root is dir, and
// returns a function that has it open and read a file (a path in dir).
// The thread keeps its goroutine to the end, and exits with it. That may
// be the process's main thread, which the runtime cannot end and parks
// instead; /proc/<pid>/root is that thread's root, through which later
// tests read this binary, so the thread's root is put back before.
func chrootedReader(t *testing.T, dir string) func(path string) error {
	t.Helper()
	paths, errs := make(chan string), make(chan error)
	go func() {
		runtime.LockOSThread() // and never unlocked
		errs <- func() error {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return err
			}
			// the root and working directory to go back to
			root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(root)
			cwd, err := unix.Open(".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(cwd)
			if err := unix.Chroot(dir); err != nil {
				return err
			}
			errs <- nil
			for path := range paths {
				errs <- readOnce(path)
			}
			return errors.Join(unix.Fchdir(root), unix.Chroot("."), unix.Fchdir(cwd))
		}()
	}()
	if err := <-errs; err != nil {
		t.Fatalf("a thread rooted at %s: %v", dir, err)
	}
	t.Cleanup(func() {
		close(paths)
		if err := <-errs; err != nil {
			t.Errorf("putting back the root of the thread rooted at %s: %v", dir, err)
		}
	})
	return func(path string) error {
		paths <- path
		return <-errs
	}
}

// TestDispatcherCompatSyscalls: a 64-bit process can make i386 system
// calls (int 0x80), whose numbers and argument registers are the i386
// table's: the dispatcher must serve them as the same calls, or a file
// opened and read through them would pass unseen. A 32-bit read of a
// watched file is reported, and a 32-bit open of a forbidden one killed.
func TestDispatcherCompatSyscalls(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	h := newHarness(t, compiler.MechSyscallTracepoint, testutil.Kernel(t).Map())
	if err := os.Mkdir(filepath.Join(h.dir, "watched-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, h.dir, map[string]string{"forbidden-0": "x", "watched-0/file": "x", "plain": "x"})
	progs := map[string]string{"read-watched": "watched-0/file", "read-forbidden": "forbidden-0", "read-plain": "plain"}
	for name, target := range progs {
		if err := os.WriteFile(filepath.Join(h.dir, name), int80OpenRead(filepath.Join(h.dir, target)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := h.start(t, filepath.Join(h.dir, "read-plain"))
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGSEGV {
		t.Skip("kernel lacks 32-bit system calls (IA32 emulation): int 0x80 faults in a 64-bit process")
	}
	if err != nil {
		t.Fatalf("read-plain: %v: %s", err, out)
	}
	if err := h.m.LoadPolicy(h.shaped(t, 0)); err != nil {
		t.Fatal(err)
	}
	if _, killed := h.run(t, filepath.Join(h.dir, "read-plain")); killed {
		t.Fatal("the 32-bit read of plain was killed")
	}
	if _, killed := h.run(t, filepath.Join(h.dir, "read-watched")); killed {
		t.Fatal("the 32-bit read of watched-0/file was killed")
	}
	if _, killed := h.run(t, filepath.Join(h.dir, "read-forbidden")); !killed {
		t.Error("the 32-bit open of forbidden-0 was not killed")
	}
	wantEvents(t, h.events(t),
		"$DIR/read-watched security_file_permission POST file:$DIR/watched-0/file int:4",
		"$DIR/read-forbidden fd_install SIGKILL int:3 file:$DIR/forbidden-0")
}
