package main

// End-to-end tests of the built binaries, as a user runs them: the agent in
// one process, `tetra getevents` in another, real workloads in between.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

type binaries struct{ tetragon, tetra string }

// built holds the binaries TestMain built once for every test.
var built binaries

func TestMain(m *testing.M) {
	if code, ok := testutil.FileHelper(); ok {
		os.Exit(code)
	}
	code := func() int {
		if pre := os.Getenv("TETRAGON_PREBUILT_DIR"); pre != "" {
			// the kernel lanes ship prebuilt static binaries (no Go toolchain in the guest)
			built = binaries{tetragon: filepath.Join(pre, "tetragon"), tetra: filepath.Join(pre, "tetra")}
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "tetragon-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		built = binaries{tetragon: filepath.Join(dir, "tetragon"), tetra: filepath.Join(dir, "tetra")}
		for bin, pkg := range map[string]string{built.tetragon: ".", built.tetra: "../tetra"} {
			if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

func build(t *testing.T) binaries {
	t.Helper()
	testutil.RequireRoot(t)
	return built
}

type agentProc struct {
	cmd    *exec.Cmd
	socket string
	bpfDir string
	logs   *bytes.Buffer
}

// startAgent runs tetragon and waits until tetra status says it is ready.
func startAgent(t *testing.T, b binaries, args ...string) *agentProc {
	t.Helper()
	a := launchAgent(t, b, args...)
	a.waitStatus(t, b, "ready", func(st agentStatus) bool { return st.Ready })
	return a
}

// agentStatus is what the tests read of `tetra status -o json`.
type agentStatus struct {
	Ready       bool     `json:"ready"`
	NotReady    []string `json:"not_ready"`
	Subscribers int      `json:"subscribers"`
}

// status reads `tetra status -o json` once (it exits 1 when not ready,
// after printing the status).
func status(b binaries, sock string) (agentStatus, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(b.tetra, "--server-address", sock, "status", "-o", "json")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var st struct {
		Agent agentStatus `json:"agent"`
	}
	if jerr := json.Unmarshal(out, &st); jerr != nil {
		return st.Agent, fmt.Errorf("tetra status: %v, %v: %q %s", err, jerr, out, &stderr)
	}
	return st.Agent, nil
}

// launchAgent runs tetragon, without waiting for anything.
func launchAgent(t *testing.T, b binaries, args ...string) *agentProc {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	a := &agentProc{socket: sock, logs: &bytes.Buffer{}}
	// a bpffs directory of its own (packages' tests run in parallel),
	// unless the test names one
	bpfDir := fmt.Sprintf("tetragon-e2e-%d", time.Now().UnixNano())
	if i := slices.Index(args, "--bpf-dir"); i >= 0 && i+1 < len(args) {
		bpfDir = args[i+1]
	}
	a.bpfDir = "/sys/fs/bpf/" + bpfDir
	a.cmd = exec.Command(b.tetragon, append([]string{"--server-address", sock, "--config-dir", t.TempDir(), "--bpf-dir", bpfDir,
		"--api-policy-dir", filepath.Join(os.TempDir(), bpfDir+"-api")}, args...)...)
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Signal(syscall.SIGTERM)
			a.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logs)
		}
		// what --keep-sensors-on-exit tests leave behind
		os.RemoveAll(a.bpfDir)
		os.RemoveAll(a.bpfDir + "_old")
		os.RemoveAll(a.bpfDir + "_lock") // what kill -9 leaves
		os.RemoveAll(filepath.Join(os.TempDir(), filepath.Base(a.bpfDir)+"-api"))
	})
	return a
}

// waitStatus polls `tetra status -o json` until the agent's status
// satisfies ok (what it waits for, in the failure message), and returns it.
func (a *agentProc) waitStatus(t *testing.T, b binaries, what string, ok func(agentStatus) bool) agentStatus {
	t.Helper()
	// generous: under the qemu lanes' emulation, verifying one policy hook
	// takes seconds
	const within = 90 * time.Second
	deadline := time.Now().Add(within)
	for {
		st, err := status(b, a.socket)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not %s after %v: %+v %v\nagent log:\n%s", what, within, st, err, a.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getevents runs `tetra getevents` and returns a channel of its output lines.
func getevents(t *testing.T, b binaries, sock string, args ...string) <-chan string {
	t.Helper()
	before, err := status(b, sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, b.tetra, append([]string{"--server-address", sock, "getevents"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	lines := make(chan string, 10000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// the workload must not start before the subscription is in place:
	// under the qemu lanes' emulation tetra takes seconds to connect
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := status(b, sock)
		if err == nil && st.Subscribers > before.Subscribers {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("tetra getevents %v did not subscribe within 60s (subscribers %d, before %d): %v", args, st.Subscribers, before.Subscribers, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLines collects lines containing marker until want are seen.
func waitLines(t *testing.T, lines <-chan string, marker string, want int) []string {
	t.Helper()
	var got []string
	deadline := time.After(15 * time.Second)
	for len(got) < want {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("getevents ended; got %q", got)
			}
			if strings.Contains(l, marker) {
				got = append(got, l)
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %d lines with %q; got %q", want, marker, got)
		}
	}
	return got
}

func TestCompactCatHostname(t *testing.T) {
	b := build(t)
	a := startAgent(t, b)
	host, _ := os.Hostname()
	lines := getevents(t, b, a.socket, "-o", "compact", "--color", "never", "--host")

	marker := fmt.Sprintf("/etc/hostname-e2e-%d", time.Now().UnixNano())
	// cat of a missing file: the path is unique to this run and cat exits 1
	exec.Command("sh", "-c", "cat /etc/hostname "+marker+"; true").Run()
	got := waitLines(t, lines, marker, 4)
	cat, _ := filepath.EvalSymlinks("/bin/cat")
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	want := []string{
		fmt.Sprintf("🚀 process %s %s -c \"cat /etc/hostname %s; true\"", host, sh, marker),
		fmt.Sprintf("🚀 process %s %s /etc/hostname %s", host, cat, marker),
		fmt.Sprintf("💥 exit    %s %s /etc/hostname %s 1", host, cat, marker),
		fmt.Sprintf("💥 exit    %s %s -c \"cat /etc/hostname %s; true\" 0", host, sh, marker),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("compact output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestJSONParentLink(t *testing.T) {
	b := build(t)
	a := startAgent(t, b)
	// busybox systems link both to one binary: filter on what they resolve to
	catBin, _ := filepath.EvalSymlinks("/bin/cat")
	shBin, _ := filepath.EvalSymlinks("/bin/sh")
	lines := getevents(t, b, a.socket, "-o", "json", "--process", "^("+regexp.QuoteMeta(catBin)+"|"+regexp.QuoteMeta(shBin)+")$")
	marker := fmt.Sprintf("json-e2e-%d", time.Now().UnixNano())
	exec.Command("sh", "-c", "cat /etc/hostname "+marker+" >/dev/null 2>&1; true").Run()
	got := waitLines(t, lines, marker, 2)
	type proc struct {
		ExecID       string `json:"exec_id"`
		ParentExecID string `json:"parent_exec_id"`
		Binary       string `json:"binary"`
		Arguments    string `json:"arguments"`
		Pid          uint32 `json:"pid"`
		Cwd          string `json:"cwd"`
		StartTime    string `json:"start_time"`
	}
	type ev struct {
		ProcessExec *struct {
			Process proc `json:"process"`
			Parent  proc `json:"parent"`
		} `json:"process_exec"`
		NodeName string `json:"node_name"`
		Time     string `json:"time"`
	}
	var evs []ev
	for _, l := range got {
		var e ev
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, l)
		}
		evs = append(evs, e)
	}
	if evs[0].ProcessExec == nil || evs[1].ProcessExec == nil {
		t.Fatalf("want two process_exec events, got:\n%s", strings.Join(got, "\n"))
	}
	sh, cat := evs[0].ProcessExec, evs[1].ProcessExec
	if cat.Process.ParentExecID != sh.Process.ExecID || cat.Parent.ExecID != sh.Process.ExecID || cat.Parent.Binary != sh.Process.Binary {
		t.Fatalf("cat's parent does not link to sh:\n%s", strings.Join(got, "\n"))
	}
	if evs[1].NodeName == "" || evs[1].Time == "" || cat.Process.StartTime == "" || cat.Process.Pid == 0 || cat.Process.Cwd == "" {
		t.Fatalf("missing fields:\n%s", got[1])
	}
	if jq, err := exec.LookPath("jq"); err == nil {
		cmd := exec.Command(jq, "-r", "select(.process_exec) | .process_exec.process.binary")
		cmd.Stdin = strings.NewReader(strings.Join(got, "\n") + "\n")
		out, err := cmd.Output()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "\n"+catBin) {
			t.Fatalf("jq recipe: %v: %q", err, out)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("jq is not installed; CI installs it to check the README's recipe")
	}
}

func TestShutdownRemovesEverything(t *testing.T) {
	b := build(t)
	a := startAgent(t, b)
	// a second agent on the same socket fails cleanly and leaves the first alone
	second := exec.Command(b.tetragon, "--server-address", a.socket, "--config-dir", t.TempDir())
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another tetragon is running") {
		t.Fatalf("second agent: %v\n%s", err, out)
	}
	if _, err := os.Stat(a.socket); err != nil {
		t.Fatalf("the second agent removed the first one's socket: %v", err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", err, a.logs)
	}
	if _, err := os.Stat(a.socket); !os.IsNotExist(err) {
		t.Fatalf("socket still there after shutdown: %v", err)
	}
	if _, err := os.Stat(a.bpfDir); !os.IsNotExist(err) {
		t.Fatalf("pins still there after shutdown without --keep-sensors-on-exit: %v", err)
	}
	if !strings.Contains(a.logs.String(), "Listening for events completed") {
		t.Fatalf("no clean-shutdown line in the log:\n%s", a.logs)
	}
}

func TestNotRootFailsWithOneLine(t *testing.T) {
	b := build(t)
	// a copy nobody may execute: test temp dirs are private to root
	dir, err := os.MkdirTemp("", "tetragon-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tetragon")
	data, err := os.ReadFile(b.tetragon)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil || os.Chmod(dir, 0o755) != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--server-address", filepath.Join(dir, "s.sock"), "--config-dir", filepath.Join(dir, "none"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the agent started as nobody")
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "must run as root") {
		t.Fatalf("want one clear line, got:\n%s", out)
	}
}

func TestMissingBTFFailsWithFix(t *testing.T) {
	b := build(t)
	out, err := exec.Command(b.tetragon, "--server-address", filepath.Join(t.TempDir(), "s.sock"),
		"--config-dir", t.TempDir(), "--btf", "/nonexistent/vmlinux").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "kernel BTF /nonexistent/vmlinux") {
		t.Fatalf("want a BTF error, got %v:\n%s", err, out)
	}
}

// baseProgs returns the programs of the base sensor pinned under pins
// (the agent's --bpf-dir), from its links.
func baseProgs(t *testing.T, pins string) []ebpf.ProgramID {
	t.Helper()
	var paths []string
	for i := range 3 {
		paths = append(paths, filepath.Join(pins, "base", fmt.Sprintf("link%d", i)))
	}
	return linkedProgs(t, paths...)
}

// dispatcherProgs returns the programs of the syscall dispatcher pinned
// under pins from its links, and false when none is pinned (the policies
// use other mechanisms).
func dispatcherProgs(t *testing.T, pins string) ([]ebpf.ProgramID, bool) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(pins, "policies", hooks.DispatcherPin, "link_*"))
	return linkedProgs(t, paths...), len(paths) > 0
}

// pointProgs returns the programs of the attach points' objects pinned
// under pins, from their links.
func pointProgs(t *testing.T, pins string) []ebpf.ProgramID {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(pins, "policies", hooks.PointsPin, "*", "link*"))
	return linkedProgs(t, paths...)
}

// linkedProgs returns the programs of the links pinned at paths.
func linkedProgs(t *testing.T, paths ...string) []ebpf.ProgramID {
	t.Helper()
	var ids []ebpf.ProgramID
	for _, path := range paths {
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := l.Info()
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.Program)
	}
	return ids
}
