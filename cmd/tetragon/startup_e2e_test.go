package main

// How the agent starts and stops when something is wrong: a policy that
// cannot load, a second agent on the same pins, signals other than SIGTERM.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// brokenPolicy is a kill-on-open policy of fd_install with parts replaced.
func brokenPolicy(call, extra, index, typ, op string) string {
	return fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: broken
spec:
  kprobes:
  - call: %q
    syscall: false
%s    args:
    - index: %s
      type: %q
    selectors:
    - matchArgs:
      - index: %s
        operator: %q
        values:
        - "/nonexistent"
      matchActions:
      - action: Sigkill
`, call, extra, index, typ, index, op)
}

// brokenPolicies are the kinds of broken policy file hostile testing fed
// the agent, each with the place its error must name.
func brokenPolicies() []struct{ name, content, place string } {
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*131 + 7)
	}
	return []struct{ name, content, place string }{
		{"badyaml", "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: x\n spec: [\n", "badyaml.yaml:5:"},
		{"unknownfield", brokenPolicy("fd_install", "    bogusField: 1\n", "1", "file", "Equal"), "unknownfield.yaml:9:5:"},
		{"unknowntype", brokenPolicy("fd_install", "", "1", "flie", "Equal"), "unknowntype.yaml:11:13:"},
		{"indexrange", brokenPolicy("fd_install", "", "9", "file", "Equal"), "indexrange.yaml:10:14:"},
		{"operatortype", brokenPolicy("fd_install", "", "0", "int", "Prefix"), "operatortype.yaml:15:19:"},
		{"nofunction", brokenPolicy("no_such_function_in_any_kernel", "", "1", "file", "Equal"), "nofunction.yaml:7:5:"},
		{"garbage", string(garbage), "garbage.yaml:1:"},
		{"deep", "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: deep\nspec:\n  kprobes: " +
			strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n", "deep.yaml:6:"},
	}
}

// runToExit runs the agent expecting it to stop by itself, and returns its
// output and exit error; it fails the test if the agent keeps running.
func runToExit(t *testing.T, b binaries, bpfDir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.tetragon, append([]string{"--server-address", filepath.Join(t.TempDir(), "s.sock"),
		"--config-dir", t.TempDir(), "--bpf-dir", bpfDir}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the agent did not exit within 120s:\n%s", out)
	}
	return string(out), err
}

func uniqueBPFDir(what string) string {
	return fmt.Sprintf("tetragon-e2e-%s-%d", what, time.Now().UnixNano())
}

// TestBrokenTracingPolicyExits: a policy named with --tracing-policy that
// cannot load ends the start with the error and its place, and leaves
// nothing pinned.
func TestBrokenTracingPolicyExits(t *testing.T) {
	b := build(t)
	dir := t.TempDir()
	for _, c := range brokenPolicies() {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, c.name+".yaml")
			if err := os.WriteFile(file, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			bpfDir := uniqueBPFDir("broken")
			out, err := runToExit(t, b, bpfDir, "--tracing-policy", file)
			if err == nil {
				t.Fatalf("the agent exited 0 with a broken --tracing-policy:\n%s", out)
			}
			i := strings.LastIndex(out, "tetragon: --tracing-policy "+file+" does not load:\n")
			if i < 0 || !strings.Contains(out[i:], c.place) {
				t.Fatalf("want the error with %q at the end, got:\n%s", c.place, out)
			}
			for _, p := range []string{"", "_old", "_lock"} {
				if _, err := os.Stat("/sys/fs/bpf/" + bpfDir + p); !os.IsNotExist(err) {
					os.RemoveAll("/sys/fs/bpf/" + bpfDir + p)
					t.Errorf("/sys/fs/bpf/%s%s left after the failed start: %v", bpfDir, p, err)
				}
			}
		})
	}
	// a file that holds no policy is not one to run with either
	notPolicy := filepath.Join(dir, "config.yaml")
	os.WriteFile(notPolicy, []byte("log-level: debug\n"), 0o644)
	out, err := runToExit(t, b, uniqueBPFDir("broken"), "--tracing-policy", notPolicy)
	if err == nil || !strings.Contains(out, "--tracing-policy "+notPolicy+": the file holds no TracingPolicy") {
		t.Fatalf("a --tracing-policy without a policy: %v\n%s", err, out)
	}
}

// TestFailedStartKeepsPreviousEnforcement: after a run with
// --keep-sensors-on-exit, a start that fails leaves that run's pinned
// enforcement in place, where the next start finds and replaces it.
func TestFailedStartKeepsPreviousEnforcement(t *testing.T) {
	b := build(t)
	tg := targets(t, 1)
	dir := policyDir(t)
	os.WriteFile(filepath.Join(dir, "p.yaml"), testutil.KillOnOpenPolicy("p", tg[0]), 0o644)
	bpfDir := uniqueBPFDir("failkeep")
	first := startAgent(t, b, "--tracing-policy-dir", dir, "--bpf-dir", bpfDir, "--keep-sensors-on-exit")
	waitKilled(t, tg[0], true, time.Second)
	first.cmd.Process.Signal(syscall.SIGTERM)
	if err := first.cmd.Wait(); err != nil {
		t.Fatalf("first agent: %v", err)
	}
	waitKilled(t, tg[0], true, time.Second)
	pins := "/sys/fs/bpf/" + bpfDir
	progs := baseProgs(t, pins)
	// the syscall dispatcher is adopted too, where the policy uses it, and
	// the attach points' objects otherwise (kprobes)
	dprogs, dispatched := dispatcherProgs(t, pins)
	pprogs := pointProgs(t, pins)
	if !dispatched && len(pprogs) == 0 {
		t.Fatalf("neither the syscall dispatcher nor an attach point's object is pinned under %s", pins)
	}

	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte(brokenPolicy("no_such_function_in_any_kernel", "", "1", "file", "Equal")), 0o644)
	out, err := runToExit(t, b, bpfDir, "--tracing-policy-dir", dir, "--tracing-policy", broken, "--keep-sensors-on-exit")
	if err == nil || !strings.Contains(out, "does not load") {
		t.Fatalf("the start with a broken policy: %v\n%s", err, out)
	}
	if !testutil.CatKilled(tg[0]) {
		t.Fatalf("the failed start removed the previous run's enforcement:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(pins, "base")); err != nil {
		t.Fatalf("the previous run's pins are not back in place: %v\n%s", err, out)
	}
	// the failed start adopted the base sensor, and left it as it was
	if !strings.Contains(out, "Adopted the previous run's base sensor") {
		t.Errorf("the failed start did not adopt the base sensor:\n%s", out)
	}
	if now := baseProgs(t, pins); !slices.Equal(now, progs) {
		t.Fatalf("base sensor programs %v after the failed start, want the first run's %v", now, progs)
	}
	if dispatched {
		if !strings.Contains(out, "Adopted the previous run's syscall dispatcher") {
			t.Errorf("the failed start did not adopt the syscall dispatcher:\n%s", out)
		}
		if now, _ := dispatcherProgs(t, pins); !slices.Equal(now, dprogs) {
			t.Fatalf("dispatcher programs %v after the failed start, want the first run's %v", now, dprogs)
		}
	}
	if now := pointProgs(t, pins); !slices.Equal(now, pprogs) {
		t.Fatalf("attach points' programs %v after the failed start, want the first run's %v", now, pprogs)
	}
	if _, err := os.Stat(pins + "_old"); !os.IsNotExist(err) {
		t.Fatalf("%s_old left: %v", pins, err)
	}

	// the next good start takes over from the restored pins, and its clean
	// stop (no --keep-sensors-on-exit) removes everything
	third := startAgent(t, b, "--tracing-policy-dir", dir, "--bpf-dir", bpfDir)
	waitKilled(t, tg[0], true, time.Second)
	if now := baseProgs(t, pins); !slices.Equal(now, progs) {
		t.Errorf("base sensor programs %v after the third start, want the adopted %v", now, progs)
	}
	if now, _ := dispatcherProgs(t, pins); dispatched && !slices.Equal(now, dprogs) {
		t.Errorf("dispatcher programs %v after the third start, want the adopted %v", now, dprogs)
	}
	if now := pointProgs(t, pins); !slices.Equal(now, pprogs) {
		t.Errorf("attach points' programs %v after the third start, want the adopted %v", now, pprogs)
	}
	// all of them are unloaded at the clean stop
	progs = slices.Concat(progs, dprogs, pprogs)
	third.cmd.Process.Signal(syscall.SIGTERM)
	if err := third.cmd.Wait(); err != nil {
		t.Fatalf("third agent: %v", err)
	}
	waitKilled(t, tg[0], false, 10*time.Second)
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		t.Fatalf("pins left after a clean stop: %v", err)
	}
	// and the adopted base sensor is unloaded with them (the kernel frees
	// a program a moment after its last reference goes)
	loaded := func() (n int) {
		for _, id := range progs {
			if p, err := ebpf.NewProgramFromID(id); err == nil {
				p.Close()
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); loaded() > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := loaded(); n > 0 {
		t.Errorf("%d of the base sensor's programs %v still loaded after a clean stop", n, progs)
	}
}

func healthz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestPolicyDirectoryNotReady: while a policy file of the policy directory
// does not enforce, the agent runs (the good files enforce) but is not
// ready, and says which file and why; fixed, it is ready; a bad edit after
// that keeps the last good version, and readiness.
func TestPolicyDirectoryNotReady(t *testing.T) {
	b := build(t)
	tg := targets(t, 2)
	dir := policyDir(t)
	os.WriteFile(filepath.Join(dir, "good.yaml"), testutil.KillOnOpenPolicy("good", tg[0]), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(brokenPolicy("fd_install", "", "1", "flie", "Equal")), 0o644)
	health := freeAddr(t)
	a := launchAgent(t, b, "--tracing-policy-dir", dir, "--health-server-address", health)
	st := a.waitStatus(t, b, "started", func(st agentStatus) bool {
		return len(st.NotReady) > 0 && !strings.HasPrefix(st.NotReady[0], "starting")
	})
	if st.Ready || len(st.NotReady) != 1 || !strings.Contains(st.NotReady[0], bad+": bad.yaml:11:13:") {
		t.Fatalf("status with a broken policy file: %+v", st)
	}
	waitKilled(t, tg[0], true, time.Second)
	out, err := exec.Command(b.tetra, "--server-address", a.socket, "status").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Not ready:") || !strings.Contains(string(out), "bad.yaml:11:13:") {
		t.Fatalf("tetra status with a broken policy file: %v\n%s", err, out)
	}
	if code, body := healthz(t, health); code != http.StatusServiceUnavailable || !strings.Contains(body, "bad.yaml:11:13:") {
		t.Fatalf("/healthz with a broken policy file: %d %q", code, body)
	}

	writeAtomic(t, bad, testutil.KillOnOpenPolicy("was-bad", tg[1]))
	a.waitStatus(t, b, "ready", func(st agentStatus) bool { return st.Ready })
	waitKilled(t, tg[1], true, time.Second)
	if code, body := healthz(t, health); code != http.StatusOK {
		t.Fatalf("/healthz once fixed: %d %q", code, body)
	}

	writeAtomic(t, bad, []byte(brokenPolicy("fd_install", "", "1", "flie", "Equal")))
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(a.logs.String(), "the last good version stays") {
		if time.Now().After(deadline) {
			t.Fatal("the bad edit was not noticed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := exec.Command(b.tetra, "--server-address", a.socket, "status").CombinedOutput(); err != nil {
		t.Fatalf("not ready after a bad edit that keeps the last good version: %v\n%s", err, out)
	}
	waitKilled(t, tg[1], true, time.Second)
}

// TestSecondAgentSameBPFDir: a second agent on the pins of a running one
// refuses to start, naming it, and the first keeps enforcing; once the
// first stops, the directory is free.
func TestSecondAgentSameBPFDir(t *testing.T) {
	b := build(t)
	tg := targets(t, 1)
	dir := policyDir(t)
	os.WriteFile(filepath.Join(dir, "p.yaml"), testutil.KillOnOpenPolicy("p", tg[0]), 0o644)
	bpfDir := uniqueBPFDir("twoagents")
	first := startAgent(t, b, "--tracing-policy-dir", dir, "--bpf-dir", bpfDir)
	waitKilled(t, tg[0], true, time.Second)

	out, err := runToExit(t, b, bpfDir, "--tracing-policy-dir", dir)
	want := fmt.Sprintf("another tetragon (pid %d) is using --bpf-dir /sys/fs/bpf/%s", first.cmd.Process.Pid, bpfDir)
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("second agent on the same --bpf-dir: %v, want %q in:\n%s", err, want, out)
	}
	if !testutil.CatKilled(tg[0]) {
		t.Fatal("the first agent's enforcement is gone after the second one's start")
	}
	if out, err := exec.Command(b.tetra, "--server-address", first.socket, "status").CombinedOutput(); err != nil {
		t.Fatalf("the first agent after the second one's start: %v\n%s", err, out)
	}
	first.cmd.Process.Signal(syscall.SIGTERM)
	if err := first.cmd.Wait(); err != nil {
		t.Fatalf("first agent: %v", err)
	}
	for _, p := range []string{"", "_lock"} {
		if _, err := os.Stat("/sys/fs/bpf/" + bpfDir + p); !os.IsNotExist(err) {
			t.Fatalf("/sys/fs/bpf/%s%s left after a clean stop: %v", bpfDir, p, err)
		}
	}
	startAgent(t, b, "--tracing-policy-dir", dir, "--bpf-dir", bpfDir)
	waitKilled(t, tg[0], true, time.Second)
}

// TestClosedLogPipe: `tetragon 2>&1 | head -1`: the reader of the log goes
// away; the agent keeps running and enforcing, and stops cleanly.
func TestClosedLogPipe(t *testing.T) {
	b := build(t)
	tg := targets(t, 1)
	dir := policyDir(t)
	bpfDir := uniqueBPFDir("sigpipe")
	sock := filepath.Join(t.TempDir(), "s.sock")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(b.tetragon, "--server-address", sock, "--config-dir", t.TempDir(), "--bpf-dir", bpfDir,
		"--tracing-policy-dir", dir)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		os.RemoveAll("/sys/fs/bpf/" + bpfDir)
		os.RemoveAll("/sys/fs/bpf/" + bpfDir + "_lock")
	})
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.Close() // head -1 exits

	a := &agentProc{cmd: cmd, socket: sock, logs: &bytes.Buffer{}}
	a.waitStatus(t, b, "ready", func(st agentStatus) bool { return st.Ready })
	// loading a policy logs: a write to the closed pipe
	os.WriteFile(filepath.Join(dir, "p.yaml"), testutil.KillOnOpenPolicy("p", tg[0]), 0o644)
	waitKilled(t, tg[0], true, 60*time.Second)
	if out, err := exec.Command(b.tetra, "--server-address", sock, "status").CombinedOutput(); err != nil {
		t.Fatalf("the agent after writing to a closed log pipe: %v\n%s (%v)", err, out, cmd.ProcessState)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM, with a closed log pipe: %v", err)
	}
	assertCleanedUp(t, sock, bpfDir)
	waitKilled(t, tg[0], false, 10*time.Second)
}

// TestSIGHUPStopsCleanly: SIGHUP (a closed terminal) stops the agent as
// SIGTERM does: socket and pins removed, enforcement gone with it.
func TestSIGHUPStopsCleanly(t *testing.T) {
	b := build(t)
	tg := targets(t, 1)
	dir := policyDir(t)
	os.WriteFile(filepath.Join(dir, "p.yaml"), testutil.KillOnOpenPolicy("p", tg[0]), 0o644)
	bpfDir := uniqueBPFDir("sighup")
	a := startAgent(t, b, "--tracing-policy-dir", dir, "--bpf-dir", bpfDir)
	waitKilled(t, tg[0], true, time.Second)
	a.cmd.Process.Signal(syscall.SIGHUP)
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGHUP: %v", err)
	}
	assertCleanedUp(t, a.socket, bpfDir)
	if !strings.Contains(a.logs.String(), "Listening for events completed") {
		t.Fatalf("no clean-shutdown line in the log:\n%s", a.logs)
	}
	waitKilled(t, tg[0], false, 10*time.Second)
}

func assertCleanedUp(t *testing.T, sock, bpfDir string) {
	t.Helper()
	for _, p := range []string{sock, "/sys/fs/bpf/" + bpfDir, "/sys/fs/bpf/" + bpfDir + "_lock"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after the stop: %v", p, err)
		}
	}
}
