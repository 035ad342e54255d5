package hooks

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// The process filters (matchBinaries, matchPIDs, matchNamespaces,
// matchCapabilities) and matchReturnArgs, evaluated in the kernel, on real
// workloads. Each policy hooks fd_install; selector i pairs the filter
// under test with the file data<i> of the test directory, so the file an
// event names tells which selector matched, and the events of one policy
// show every operator's match and non-match at once.

// filterPolicy returns a policy (a template for harness.load) whose
// selector i matches opens of data<i> that pass filters[i], a YAML
// fragment at the selector's indentation.
func filterPolicy(name string, filters ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %q
spec:
  options:
  - name: hook-mechanism
    value: "%%[1]s"
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 1
      type: "file"
    selectors:
`, name)
	for i, f := range filters {
		fmt.Fprintf(&b, `    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%%[2]s/data%d"
%s`, i, f)
	}
	return b.String()
}

// filterEnv is a test directory with data files and copies of cat and sh
// in two directories, so that two processes differ only by the path of
// their executable. Busybox (the lanes' userland) picks the applet from
// argv[0]'s base name, so its copies still run cat and sh.
type filterEnv struct {
	h *harness
}

func newFilterEnv(t *testing.T, mech string) *filterEnv {
	t.Helper()
	return newFilterEnvOpts(t, mech, sensor.Options{Features: testutil.Kernel(t).Map()})
}

// newFilterEnvOpts is newFilterEnv with the manager's loader options.
func newFilterEnvOpts(t *testing.T, mech string, opts sensor.Options) *filterEnv {
	t.Helper()
	h := newHarnessOpts(t, mech, opts)
	files := map[string]string{}
	for i := range 5 {
		files[fmt.Sprintf("data%d", i)] = "x"
	}
	writeFiles(t, h.dir, files)
	for _, c := range []struct{ tool, dst string }{{"cat", "a/cat"}, {"cat", "b/cat"}, {"sh", "a/sh"}} {
		copyExecutable(t, c.tool, filepath.Join(h.dir, c.dst))
	}
	// other users run the copies and read the data files (matchCapabilities)
	for _, d := range []string{filepath.Dir(h.dir), h.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &filterEnv{h: h}
}

// copyExecutable copies the executable that tool names on PATH to dst.
func copyExecutable(t *testing.T, tool, dst string) {
	t.Helper()
	src, err := exec.LookPath(tool)
	if err != nil {
		// every lane has cat and sh (busybox applets in the guests)
		t.Fatalf("%s is not installed: %v", tool, err)
	}
	if src, err = filepath.EvalSymlinks(src); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// path returns the absolute path of a file of the test directory.
func (e *filterEnv) path(rel string) string { return filepath.Join(e.h.dir, rel) }

// run runs argv in the test directory with attr, naming its events name,
// and waits for it; it may fail (cat of a missing file).
func (e *filterEnv) run(t *testing.T, name string, attr *syscall.SysProcAttr, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.SysProcAttr = e.h.dir, attr
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	e.h.mu.Lock()
	e.h.pids[uint32(cmd.Process.Pid)] = name
	e.h.mu.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Logf("%s %v: %v: %s", name, argv, err, out.String())
	}
}

// waiter is a shell that runs a script once told to, so that its pid is
// known before the policy that names it loads.
type waiter struct {
	cmd *exec.Cmd
	in  io.WriteCloser
}

func (e *filterEnv) startWaiter(t *testing.T, name, script string) *waiter {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read go; "+script)
	cmd.Dir = e.h.dir
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	e.h.mu.Lock()
	e.h.pids[uint32(cmd.Process.Pid)] = name
	e.h.mu.Unlock()
	return &waiter{cmd: cmd, in: in}
}

func (w *waiter) pid() int { return w.cmd.Process.Pid }

// release runs the waiter's script and waits for it.
func (w *waiter) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(w.in, "go\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

// events returns, in order, "<name> <hook> <action> <args>" for each
// event, name being the name a process was started with, or "child" for
// the processes they started. Only the test's workloads open the data
// files, so every record is one of theirs.
func (e *filterEnv) events(t *testing.T) []string {
	t.Helper()
	e.h.others = "child"
	var out []string
	for _, ev := range e.h.events(t) {
		out = append(out, ev.text)
	}
	return out
}

// check compares the events with want, written "<name> <data file>" for
// fd_install posts, and checks that nothing else reached the ring buffer:
// a call no selector matches must write no record.
func (e *filterEnv) check(t *testing.T, want ...string) {
	t.Helper()
	got := e.events(t)
	var exp []string
	for _, w := range want {
		name, file, _ := strings.Cut(w, " ")
		exp = append(exp, fmt.Sprintf("%s fd_install POST file:$DIR/%s", name, file))
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(exp, "\n  "))
	}
	if st := e.h.stats(t); st.Posted != uint64(len(got)) {
		t.Fatalf("the hook posted %d records for %d events", st.Posted, len(got))
	}
}

// forEachMechanism runs f through each mechanism the kernel offers.
func forEachMechanism(t *testing.T, f func(t *testing.T, mech string)) {
	testutil.RequireRoot(t)
	for _, mech := range mechanisms {
		t.Run(mech.name, func(t *testing.T) {
			testutil.RequireFeature(t, mech.feature)
			f(t, mech.name)
		})
	}
}

func TestMatchBinaries(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		t.Run("operators", func(t *testing.T) {
			e := newFilterEnv(t, mech)
			acat := e.path("a/cat")
			e.h.load(t, filterPolicy("binaries",
				`      matchBinaries:
      - operator: In
        values: ["%[2]s/a/cat"]
`, `      matchBinaries:
      - operator: NotIn
        values: ["%[2]s/a/cat"]
`, `      matchBinaries:
      - operator: Prefix
        values: ["%[2]s/a/"]
`, `      matchBinaries:
      - operator: NotPrefix
        values: ["%[2]s/a/"]
`, `      matchBinaries:
      - operator: Postfix
        values: ["/a/cat"]
`))
			for i := range 5 {
				data := fmt.Sprintf("data%d", i)
				e.run(t, "a/cat", nil, acat, data)
				e.run(t, "b/cat", nil, e.path("b/cat"), data)
			}
			e.check(t, "a/cat data0", "b/cat data1", "a/cat data2", "b/cat data3", "a/cat data4")
		})
		t.Run("followChildren", func(t *testing.T) {
			e := newFilterEnv(t, mech)
			ash, bcat := e.path("a/sh"), e.path("b/cat")
			e.h.load(t, filterPolicy("binaries-follow",
				`      matchBinaries:
      - operator: NotPostfix
        values: ["/a/cat"]
`, `      matchBinaries:
      - operator: In
        values: ["%[2]s/a/sh"]
        followChildren: true
`, `      matchBinaries:
      - operator: In
        values: ["%[2]s/a/sh"]
`, `      matchBinaries:
      - operator: NotIn
        values: ["%[2]s/a/sh"]
        followChildren: true
`))
			e.run(t, "a/cat", nil, e.path("a/cat"), "data0")
			e.run(t, "b/cat", nil, bcat, "data0")
			// "; true" makes the shell fork for cat instead of exec'ing it
			for i := 1; i <= 3; i++ {
				script := fmt.Sprintf("%s data%d; true", bcat, i)
				e.run(t, "a/sh", nil, ash, "-c", script)
				e.run(t, "sh", nil, "sh", "-c", script)
			}
			// data1: a/sh's child; data2: nobody (cat is not a/sh);
			// data3: the child of the sh that is not a/sh
			e.check(t, "b/cat data0", "child data1", "child data3")
		})
	})
}

// matchParentBinaries (Tetragon 1.7): the parent's executable, and with
// followChildren any ancestor's. Each data file is opened by b/cat started
// four ways: by a/sh; by the system's sh; by the system's sh started by
// a/sh (a/sh is the grandparent); and by the test itself.
func TestMatchParentBinaries(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		e := newFilterEnv(t, mech)
		ash, bcat := e.path("a/sh"), e.path("b/cat")
		// by its path: busybox's sh (the lanes') runs a bare "sh" as
		// its own applet, re-executing itself (a/sh), not the system's
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Fatal(err)
		}
		e.h.load(t, filterPolicy("parent-binaries",
			`      matchParentBinaries:
      - operator: In
        values: ["%[2]s/a/sh"]
`, `      matchParentBinaries:
      - operator: NotIn
        values: ["%[2]s/a/sh"]
`, `      matchParentBinaries:
      - operator: Prefix
        values: ["%[2]s/a/"]
`, `      matchParentBinaries:
      - operator: In
        values: ["%[2]s/a/sh"]
        followChildren: true
`, `      matchParentBinaries:
      - operator: NotPostfix
        values: ["/a/sh"]
        followChildren: true
`))
		for i := range 5 {
			// "; true" makes a shell fork for the command instead of
			// exec'ing it
			script := fmt.Sprintf("%s data%d; true", bcat, i)
			e.run(t, "a/sh", nil, ash, "-c", script)
			e.run(t, "sh", nil, "sh", "-c", script)
			e.run(t, "a/sh", nil, ash, "-c", fmt.Sprintf("%s -c '%s'; true", sh, script))
			e.run(t, "b/cat", nil, bcat, fmt.Sprintf("data%d", i))
		}
		// data0: the cat a/sh started; data1: the other three; data2: as
		// data0; data3: a/sh's child and grandchild; data4: the cats with
		// no a/sh above them
		e.check(t, "child data0",
			"child data1", "child data1", "b/cat data1",
			"child data2",
			"child data3", "child data3",
			"child data4", "b/cat data4")
	})
}

func TestMatchPIDs(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		t.Run("operators", func(t *testing.T) {
			e := newFilterEnv(t, mech)
			bcat := e.path("b/cat")
			// exec: the waiter itself opens; "; true": a child of it does
			w := []*waiter{
				e.startWaiter(t, "w0", "exec "+bcat+" data0"),
				e.startWaiter(t, "w1", "exec "+bcat+" data1"),
				e.startWaiter(t, "w2", bcat+" data2; true"),
				e.startWaiter(t, "w3", bcat+" data3; true"),
				e.startWaiter(t, "w4", bcat+" data4; true"),
			}
			e.h.load(t, filterPolicy("pids",
				fmt.Sprintf(`      matchPIDs:
      - operator: In
        values: [%d]
`, w[0].pid()), fmt.Sprintf(`      matchPIDs:
      - operator: NotIn
        values: [%d]
`, w[1].pid()), fmt.Sprintf(`      matchPIDs:
      - operator: In
        values: [%d]
        followForks: true
`, w[2].pid()), fmt.Sprintf(`      matchPIDs:
      - operator: In
        values: [%d]
`, w[3].pid()), fmt.Sprintf(`      matchPIDs:
      - operator: NotIn
        values: [%d]
        followForks: true
`, w[4].pid())))
			for i, wi := range w {
				wi.release(t)
				e.run(t, "b/cat", nil, bcat, fmt.Sprintf("data%d", i))
			}
			e.check(t, "w0 data0", "b/cat data1", "child data2", "b/cat data4")
		})
		t.Run("isNamespacePID", func(t *testing.T) {
			e := newFilterEnv(t, mech)
			bcat := e.path("b/cat")
			e.h.load(t, filterPolicy("nspid", `      matchPIDs:
      - operator: In
        values: [1]
        isNamespacePID: true
`, `      matchPIDs:
      - operator: In
        values: [1]
`, `      matchPIDs:
      - operator: NotIn
        values: [1]
        isNamespacePID: true
`))
			// the first process of a new pid namespace is its pid 1
			newPID := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
			for i := range 3 {
				data := fmt.Sprintf("data%d", i)
				e.run(t, "newpid", newPID, bcat, data)
				e.run(t, "b/cat", nil, bcat, data)
			}
			e.check(t, "newpid data0", "b/cat data2")
		})
	})
}

// ownNamespace returns the inode number of namespace proc of the test
// process, which its children inherit.
func ownNamespace(t *testing.T, proc string) uint64 {
	t.Helper()
	fi, err := os.Stat("/proc/self/ns/" + proc)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func nsFilter(ns, op string, value any) string {
	return fmt.Sprintf(`      - namespace: %s
        operator: %s
        values: ["%v"]
`, ns, op, value)
}

func TestMatchNamespaces(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		t.Run("inode numbers", func(t *testing.T) {
			e := newFilterEnv(t, mech)
			bcat := e.path("b/cat")
			own := func(p string) uint64 { return ownNamespace(t, p) }
			e.h.load(t, filterPolicy("namespaces",
				"      matchNamespaces:\n"+nsFilter("Net", "In", own("net")),
				"      matchNamespaces:\n"+nsFilter("Net", "NotIn", own("net")),
				// every other kind at once: one read of the wrong
				// namespace and the selector never matches
				"      matchNamespaces:\n"+nsFilter("Uts", "In", own("uts"))+nsFilter("Ipc", "In", own("ipc"))+
					nsFilter("Mnt", "In", own("mnt"))+nsFilter("Pid", "In", own("pid"))+
					nsFilter("PidForChildren", "In", own("pid_for_children"))+nsFilter("Time", "In", own("time"))+
					nsFilter("TimeForChildren", "In", own("time_for_children")),
				"      matchNamespaces:\n"+nsFilter("Cgroup", "In", own("cgroup"))+nsFilter("User", "In", own("user")),
				"      matchNamespaces:\n"+nsFilter("Mnt", "NotIn", own("mnt")),
			))
			for i, c := range []struct {
				name  string
				flags uintptr
			}{{"newnet", syscall.CLONE_NEWNET}, {"newnet", syscall.CLONE_NEWNET}, {"newuts", syscall.CLONE_NEWUTS},
				{"newcgroup", syscall.CLONE_NEWCGROUP}, {"newmnt", syscall.CLONE_NEWNS}} {
				data := fmt.Sprintf("data%d", i)
				e.run(t, c.name, &syscall.SysProcAttr{Cloneflags: c.flags}, bcat, data)
				e.run(t, "b/cat", nil, bcat, data)
			}
			e.check(t, "b/cat data0", "newnet data1", "b/cat data2", "b/cat data3", "newmnt data4")
		})
		t.Run("host_ns", func(t *testing.T) {
			e := newFilterEnv(t, mech)
			bcat := e.path("b/cat")
			policy := filterPolicy("host-ns",
				"      matchNamespaces:\n"+nsFilter("Net", "In", "host_ns"),
				"      matchNamespaces:\n"+nsFilter("Net", "NotIn", "host_ns"))
			if ownNamespace(t, "net") != hostInode(t, "net") {
				t.Fatal("the test does not run in the host's network namespace (pid 1's, or kthreadd's where pid 1 is protected), which host_ns names")
			}
			e.h.load(t, policy)
			newNet := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
			for i := range 2 {
				data := fmt.Sprintf("data%d", i)
				e.run(t, "newnet", newNet, bcat, data)
				e.run(t, "b/cat", nil, bcat, data)
			}
			e.check(t, "b/cat data0", "newnet data1")
		})
	})
}

// hostInode is the inode of the host's namespace proc: pid 1's, or, where
// pid 1 is protected (this project's machines), kthreadd's, which lives
// in the initial namespaces.
func hostInode(t *testing.T, proc string) uint64 {
	t.Helper()
	fi, err := os.Stat("/proc/1/ns/" + proc)
	if err != nil {
		if fi, err = os.Stat("/proc/2/ns/" + proc); err != nil {
			t.Fatal(err)
		}
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func capsFilter(typ, op string, extra string) string {
	return fmt.Sprintf(`      matchCapabilities:
      - type: %s
        operator: %s
        values: ["CAP_SYS_ADMIN"]
%s`, typ, op, extra)
}

func TestMatchCapabilities(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		t.Run("sets", func(t *testing.T) {
			e := newFilterEnv(t, mech)
			bcat := e.path("b/cat")
			e.h.load(t, filterPolicy("caps",
				capsFilter("Effective", "In", ""),
				capsFilter("Effective", "NotIn", ""),
				capsFilter("Permitted", "In", ""),
				capsFilter("Inheritable", "In", ""),
			))
			// a user other than root loses its capabilities at exec
			nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			// an ambient capability is inheritable too
			ambient := &syscall.SysProcAttr{AmbientCaps: []uintptr{21 /* CAP_SYS_ADMIN */}}
			for i := range 3 {
				data := fmt.Sprintf("data%d", i)
				e.run(t, "root", nil, bcat, data)
				e.run(t, "nobody", nobody, bcat, data)
			}
			e.run(t, "root", nil, bcat, "data3")
			e.run(t, "ambient", ambient, bcat, "data3")
			e.check(t, "root data0", "nobody data1", "root data2", "ambient data3")
		})
		t.Run("isNamespaceCapability", func(t *testing.T) {
			e := newFilterEnv(t, mech)
			bcat := e.path("b/cat")
			policy := filterPolicy("ns-caps", capsFilter("Effective", "In", "        isNamespaceCapability: true\n"))
			if ownNamespace(t, "user") != hostInode(t, "user") {
				t.Fatal("the test does not run in the host's user namespace (pid 1's, or kthreadd's where pid 1 is protected), which isNamespaceCapability compares with")
			}
			e.h.load(t, policy)
			// root of a user namespace of its own has every capability there
			newUser := &syscall.SysProcAttr{
				Cloneflags:  syscall.CLONE_NEWUSER,
				UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
				GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
			}
			e.run(t, "root", nil, bcat, "data0")
			e.run(t, "newuser", newUser, bcat, "data0")
			e.check(t, "newuser data0")
		})
	})
}

// returnPolicy hooks openat's return; selector i matches opens of paths
// starting with data<i> whose return value passes filters[i].
func returnPolicy(filters ...string) string {
	var b strings.Builder
	b.WriteString(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "return-args"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "sys_openat"
    syscall: true
    return: true
    args:
    - index: 1
      type: "string"
    returnArg:
      index: 0
      type: "int"
    selectors:
`)
	for i, f := range filters {
		fmt.Fprintf(&b, `    - matchArgs:
      - index: 1
        operator: "Prefix"
        values:
        - "%%[2]s/data%d"
      matchReturnArgs:
%s`, i, f)
	}
	return b.String()
}

func TestMatchReturnArgs(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		e := newFilterEnv(t, mech)
		bcat := e.path("b/cat")
		ret := func(op, v string) string {
			return fmt.Sprintf("      - index: 0\n        operator: %s\n        values: [\"%s\"]\n", op, v)
		}
		e.h.load(t, returnPolicy(ret("LessThan", "0"), ret("GreaterThan", "-1"), ret("Equal", "-2"), ret("NotEqual", "-2")))
		for i := range 4 {
			data := e.path(fmt.Sprintf("data%d", i))
			e.run(t, "cat", nil, bcat, data)
			e.run(t, "missing", nil, bcat, data+".missing")
		}
		got := e.events(t)
		want := []string{
			"missing sys_openat POST string:$DIR/data0.missing",
			"cat sys_openat POST string:$DIR/data1",
			"missing sys_openat POST string:$DIR/data2.missing",
			"cat sys_openat POST string:$DIR/data3",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if st := e.h.stats(t); st.Posted != uint64(len(got)) {
			t.Fatalf("the hook posted %d records for %d events", st.Posted, len(got))
		}
	})
}
