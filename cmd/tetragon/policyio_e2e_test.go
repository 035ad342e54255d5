package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// waitLog polls the agent's log until it holds every one of want.
func waitLog(t *testing.T, a *agentProc, within time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		logs := a.logs.String()
		missing := ""
		for _, w := range want {
			if !strings.Contains(logs, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent log lacks %q after %v", missing, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopWithin sends SIGTERM and fails the test if the agent is not gone in
// time.
func stopWithin(t *testing.T, a *agentProc, within time.Duration) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exit: %v", err)
		}
	case <-time.After(within):
		a.cmd.Process.Kill()
		<-done
		t.Fatalf("the agent did not stop within %v of SIGTERM", within)
	}
}

// TestFIFOInPolicyDirectory: a symlink x.yaml to a FIFO once kept the agent
// from ever enforcing, stopped the watcher for good at run time, and held
// up SIGTERM. Each FIFO is reported with its place, and the other files
// load, at startup and later.
func TestFIFOInPolicyDirectory(t *testing.T) {
	b := build(t)
	tg := targets(t, 2)
	dir := policyDir(t)
	fifos := t.TempDir()
	for _, n := range []string{"x", "y"} {
		if err := syscall.Mkfifo(filepath.Join(fifos, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(filepath.Join(fifos, "x"), filepath.Join(dir, "x.yaml"))
	os.WriteFile(filepath.Join(dir, "a.yaml"), testutil.KillOnOpenPolicy("a", tg[0]), 0o644)
	// not waiting for ready: whether a startup file that cannot be read
	// lets the agent be ready is a question of its own
	a := launchAgent(t, b, "--tracing-policy-dir", dir)
	waitLog(t, a, 90*time.Second, "x.yaml: not a regular file (fifo)")
	waitKilled(t, tg[0], true, 90*time.Second)

	os.Symlink(filepath.Join(fifos, "y"), filepath.Join(dir, "y.yaml"))
	os.WriteFile(filepath.Join(dir, "b.yaml"), testutil.KillOnOpenPolicy("b", tg[1]), 0o644)
	waitKilled(t, tg[1], true, 60*time.Second)
	waitLog(t, a, 10*time.Second, "y.yaml: not a regular file (fifo)")
	stopWithin(t, a, 20*time.Second)

	// the same FIFO as the config file
	out, err := exec.Command(b.tetragon, "--config-file", filepath.Join(fifos, "x"), "--config-dir", t.TempDir(),
		"--server-address", filepath.Join(t.TempDir(), "s.sock")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), filepath.Join(fifos, "x")+": not a regular file (fifo)") {
		t.Fatalf("--config-file FIFO: %v\n%s", err, out)
	}
}

// lowestFreeFD is the descriptor the process pid gets on its next open.
func lowestFreeFD(t *testing.T, pid int) uint64 {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	open := map[uint64]bool{}
	for _, e := range ents {
		n, _ := strconv.ParseUint(e.Name(), 10, 64)
		open[n] = true
	}
	var fd uint64
	for open[fd] {
		fd++
	}
	return fd
}

// TestOutOfFileDescriptors: with its file descriptors exhausted, the agent
// once read its policy directory as empty and "removed" every policy
// (their pins stayed, killing, untracked), never loaded a file added
// meanwhile, and loaded a second copy after a touch. Now nothing is
// removed, and once descriptors are back, the new file loads without
// another change and each policy is loaded once.
func TestOutOfFileDescriptors(t *testing.T) {
	b := build(t)
	tg := targets(t, 2)
	dir := policyDir(t)
	os.WriteFile(filepath.Join(dir, "a.yaml"), testutil.KillOnOpenPolicy("a", tg[0]), 0o644)
	a := startAgent(t, b, "--tracing-policy-dir", dir)
	waitKilled(t, tg[0], true, time.Second)
	pid := a.cmd.Process.Pid

	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	// the limit at the lowest free descriptor fails every open; again if
	// a descriptor the agent had open for a moment freed a lower one
	low := old
	for range 20 {
		low.Cur = lowestFreeFD(t, pid)
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if lowestFreeFD(t, pid) >= low.Cur {
			break
		}
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
				t.Error(err)
			}
		}
	}
	defer restore()
	os.WriteFile(filepath.Join(dir, "b.yaml"), testutil.KillOnOpenPolicy("b", tg[1]), 0o644)
	waitLog(t, a, 30*time.Second, dir, "too many open files")
	// a is not unloaded (its pins may hold it anyway: the registry is what
	// is checked below)
	if !testutil.CatKilled(tg[0]) {
		t.Fatal("a stopped enforcing while the directory could not be read")
	}
	time.Sleep(time.Second) // a retry or two, still out of descriptors
	os.Chtimes(filepath.Join(dir, "a.yaml"), time.Now(), time.Now())
	time.Sleep(500 * time.Millisecond)
	restore()

	// no change to the directory from here on: the retry loads b
	waitKilled(t, tg[1], true, 60*time.Second)
	if !testutil.CatKilled(tg[0]) {
		t.Fatal("a does not enforce after the descriptors came back")
	}
	l := list(t, b, a)
	if len(l.Policies) != 2 || l.Policies[0].Name != "a" || l.Policies[1].Name != "b" {
		t.Fatalf("policies: %+v, want a and b once each", l)
	}
	for _, p := range l.Policies {
		if p.State != "TP_STATE_ENABLED" {
			t.Errorf("policy %s: %+v", p.Name, p)
		}
	}
	for _, name := range []string{"a", "b"} {
		versions, err := os.ReadDir(filepath.Join(a.bpfDir, "policies", name))
		if err != nil || len(versions) != 1 {
			t.Errorf("pinned versions of %s: %v (%v), want exactly one", name, versions, err)
		}
	}
	if strings.Contains(a.logs.String(), "Policy file removed") {
		t.Error("a policy file was taken as removed")
	}
}

// TestAddWithReadOnlyAPIDir: with --keep-sensors-on-exit, "policy added"
// promises the policy survives a restart. When the API policy directory is
// read-only, tetra says why the policy is not added, and it does not
// enforce.
func TestAddWithReadOnlyAPIDir(t *testing.T) {
	b := build(t)
	tg := targets(t, 1)
	keep := t.TempDir()
	if err := syscall.Mount("tmpfs", keep, "tmpfs", syscall.MS_RDONLY, "size=64k"); err != nil {
		t.Fatalf("mounting a read-only tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(keep, syscall.MNT_DETACH) })
	a := startAgent(t, b, "--tracing-policy-dir", "", "--keep-sensors-on-exit", "--api-policy-dir", keep)
	pf := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(pf, testutil.KillOnOpenPolicy("api-policy", tg[0]), 0o644)
	out, err := tetra(t, b, a, "tracingpolicy", "add", pf)
	if err == nil || strings.Contains(out, `"api-policy" added`) || !strings.Contains(out, "FailedPrecondition") ||
		!strings.Contains(out, "would not survive a restart") || !strings.Contains(out, "read-only file system") {
		t.Fatalf("add with a read-only API policy directory: %v\n%s", err, out)
	}
	if testutil.CatKilled(tg[0]) {
		t.Fatal("the policy that was not added enforces")
	}
	if l := list(t, b, a); len(l.Policies) != 0 {
		t.Fatalf("policies: %+v", l)
	}
}

// TestConfigMistakesReported: a negative limit is refused with the
// setting's name, and a key no setting has is logged with the file.
func TestConfigMistakesReported(t *testing.T) {
	b := build(t)
	sock := filepath.Join(t.TempDir(), "s.sock")
	// a BTF that is not there ends a run that took the limit
	out, err := exec.Command(b.tetragon, "--server-address", sock, "--config-dir", t.TempDir(), "--config-file", os.DevNull,
		"--export-rate-limit", "-7", "--btf", "/nonexistent/vmlinux").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "export-rate-limit -7: want -1 (no limit)") {
		t.Fatalf("--export-rate-limit -7: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "tetragon.yaml")
	os.WriteFile(file, []byte("export-rate-limt: 100\n"), 0o600)
	out, err = exec.Command(b.tetragon, "--server-address", sock, "--config-dir", t.TempDir(), "--config-file", file,
		"--btf", "/nonexistent/vmlinux").CombinedOutput()
	if err == nil || !strings.Contains(string(out), fmt.Sprintf("config file %s: unknown key %q, ignored", file, "export-rate-limt")) {
		t.Fatalf("unknown key: %v\n%s", err, out)
	}
}
