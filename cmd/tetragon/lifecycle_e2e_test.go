package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// waitKilled polls until cat of path is killed, or fails the test.
func waitKilled(t *testing.T, path string, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for testutil.CatKilled(path) != want {
		if time.Since(start) > within {
			t.Fatalf("cat %s: killed=%v after %v, want %v", path, !want, within, want)
		}
	}
	return time.Since(start)
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func targets(t *testing.T, n int) []string {
	dir := t.TempDir()
	var out []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("t%d", i))
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func policyDir(t *testing.T) string {
	d := t.TempDir()
	os.Chmod(d, 0o755)
	return d
}

// TestHotReloadWithoutGap rewrites a policy file over and over, by plain
// writes and by editors' rename-over saves, while a prober keeps opening
// the file every version protects: not one open gets through, and each
// new version enforces. The reload latency is logged.
func TestHotReloadWithoutGap(t *testing.T) {
	b := build(t)
	edits := 100
	if lane := os.Getenv("TETRAGON_LANE"); lane != "" && lane != "host" {
		edits = 4 // verifying a hook takes seconds under emulation
	}
	tg := targets(t, edits+1)
	always := tg[edits]
	dir := policyDir(t)
	file := filepath.Join(dir, "enforcement.yaml")
	os.WriteFile(file, testutil.KillOnOpenPolicy("enforcement", always), 0o644)
	startAgent(t, b, "--tracing-policy-dir", dir)

	stop := make(chan struct{})
	counts := prober(always, stop)
	var lat []time.Duration
	for i := range edits {
		data := testutil.KillOnOpenPolicy("enforcement", always, tg[i])
		if i%2 == 0 {
			os.WriteFile(file, data, 0o644)
		} else {
			writeAtomic(t, file, data)
		}
		lat = append(lat, waitKilled(t, tg[i], true, 60*time.Second))
	}
	close(stop)
	got := <-counts
	if got[0] != 0 || got[1] == 0 {
		t.Fatalf("during %d reloads: %d opens of the protected file got through, %d were killed", edits, got[0], got[1])
	}
	// the old version goes once the new one enforces: make-before-break
	// means both overlap for a moment, which under emulation is seconds
	if edits > 1 {
		waitKilled(t, tg[edits-2], false, 60*time.Second)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d reloads, %d probes all killed; file write to enforcing: p50 %v, p99 %v, max %v",
		edits, got[1], lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

type listing struct {
	Policies []struct {
		Name   string `json:"name"`
		Source string `json:"source"`
		State  string `json:"state"`
		Error  string `json:"error"`
		Memory string `json:"kernel_memory_bytes"`
		Hooks  []struct {
			Call      string `json:"call"`
			Mechanism string `json:"mechanism"`
			Signals   string `json:"signals"`
		} `json:"hooks"`
	} `json:"policies"`
	LoadErrors string `json:"load_errors"`
}

func tetra(t *testing.T, b binaries, a *agentProc, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(b.tetra, append([]string{"--server-address", a.socket}, args...)...).CombinedOutput()
	return string(out), err
}

func list(t *testing.T, b binaries, a *agentProc) listing {
	t.Helper()
	out, err := tetra(t, b, a, "tracingpolicy", "list", "-o", "json")
	if err != nil {
		t.Fatalf("tracingpolicy list: %v\n%s", err, out)
	}
	var l listing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("tracingpolicy list -o json: %v\n%s", err, out)
	}
	return l
}

// TestPolicyFilesLifecycle: a bad edit keeps the last good version and is
// reported with its place; a ConfigMap-style symlink swap reloads; a file
// renamed into the directory loads; deleting the file unloads.
func TestPolicyFilesLifecycle(t *testing.T) {
	b := build(t)
	tg := targets(t, 3)
	dir := policyDir(t)
	// ConfigMap layout: name.yaml -> ..data/name.yaml, ..data -> ..v1
	os.Mkdir(filepath.Join(dir, "..v1"), 0o755)
	os.WriteFile(filepath.Join(dir, "..v1", "cm.yaml"), testutil.KillOnOpenPolicy("cm", tg[0]), 0o644)
	os.Symlink("..v1", filepath.Join(dir, "..data"))
	os.Symlink("..data/cm.yaml", filepath.Join(dir, "cm.yaml"))
	a := startAgent(t, b, "--tracing-policy-dir", dir)
	waitKilled(t, tg[0], true, time.Second)

	// a broken edit: the last good version keeps enforcing
	os.Mkdir(filepath.Join(dir, "..v2"), 0o755)
	os.WriteFile(filepath.Join(dir, "..v2", "cm.yaml"), []byte("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: cm\nspec:\n  kprobes:\n  - call: fd_install\n    syscall: false\n    args:\n    - index: 1\n      type: flie\n"), 0o644)
	os.Symlink("..v2", filepath.Join(dir, "..data_tmp"))
	os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
	deadline := time.Now().Add(60 * time.Second)
	for {
		l := list(t, b, a)
		if len(l.Policies) == 1 && l.Policies[0].Error != "" {
			p := l.Policies[0]
			if p.State != "TP_STATE_ENABLED" || !strings.Contains(p.Error, "cm.yaml:11:13") {
				t.Fatalf("after a broken edit: %+v, want enabled with the error's place", p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broken edit is not reported: %+v", l)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !testutil.CatKilled(tg[0]) {
		t.Fatal("the last good version stopped enforcing after a broken edit")
	}

	// the next good swap reloads
	os.Mkdir(filepath.Join(dir, "..v3"), 0o755)
	os.WriteFile(filepath.Join(dir, "..v3", "cm.yaml"), testutil.KillOnOpenPolicy("cm", tg[1]), 0o644)
	os.Symlink("..v3", filepath.Join(dir, "..data_tmp"))
	os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
	waitKilled(t, tg[1], true, 60*time.Second)
	waitKilled(t, tg[0], false, time.Second)

	// a file renamed into the directory loads
	other := filepath.Join(t.TempDir(), "moved.yaml")
	os.WriteFile(other, testutil.KillOnOpenPolicy("moved", tg[2]), 0o644)
	if err := os.Rename(other, filepath.Join(dir, "moved.yaml")); err != nil {
		t.Fatal(err)
	}
	waitKilled(t, tg[2], true, 60*time.Second)

	// deleting the file unloads its policy
	os.Remove(filepath.Join(dir, "moved.yaml"))
	waitKilled(t, tg[2], false, 60*time.Second)
	l := list(t, b, a)
	if len(l.Policies) != 1 || l.Policies[0].Name != "cm" || l.Policies[0].Error != "" {
		t.Fatalf("policies at the end: %+v", l)
	}
}

// TestTracingPolicyAPI drives `tetra tracingpolicy`: add enforces as soon
// as it returns; list, disable, enable, delete; conflicts are refused.
func TestTracingPolicyAPI(t *testing.T) {
	b := build(t)
	tg := targets(t, 1)
	dir := policyDir(t)
	os.WriteFile(filepath.Join(dir, "file.yaml"), testutil.KillOnOpenPolicy("from-file", tg[0]+"-never"), 0o644)
	a := startAgent(t, b, "--tracing-policy-dir", dir)
	pf := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(pf, testutil.KillOnOpenPolicy("api-policy", tg[0]), 0o644)

	if out, err := tetra(t, b, a, "tracingpolicy", "add", pf); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if !testutil.CatKilled(tg[0]) { // no wait: add returns once enforcing
		t.Fatal("not enforcing right after add returned")
	}
	out, err := tetra(t, b, a, "tracingpolicy", "add", pf)
	if err == nil || !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("second add of the same name: %v\n%s", err, out)
	}
	l := list(t, b, a)
	if len(l.Policies) != 2 {
		t.Fatalf("list: %+v", l)
	}
	p := l.Policies[0]
	if p.Name != "api-policy" || p.Source != "api" || p.State != "TP_STATE_ENABLED" || len(p.Hooks) != 1 ||
		p.Hooks[0].Call != "fd_install" || p.Hooks[0].Mechanism == "" || p.Hooks[0].Signals != "1" || p.Memory == "0" {
		t.Fatalf("listed: %+v", p)
	}
	text, err := tetra(t, b, a, "tracingpolicy", "list")
	if err != nil || !strings.Contains(text, "api-policy") || !strings.Contains(text, "fd_install") {
		t.Fatalf("list as text: %v\n%s", err, text)
	}

	for _, step := range []struct {
		args   []string
		killed bool
	}{
		{[]string{"disable", "api-policy"}, false},
		{[]string{"enable", "api-policy"}, true},
		{[]string{"delete", "api-policy"}, false},
	} {
		if out, err := tetra(t, b, a, append([]string{"tracingpolicy"}, step.args...)...); err != nil {
			t.Fatalf("%v: %v\n%s", step.args, err, out)
		}
		if testutil.CatKilled(tg[0]) != step.killed {
			t.Fatalf("after %v: killed=%v", step.args, !step.killed)
		}
	}
	if out, err := tetra(t, b, a, "tracingpolicy", "delete", "from-file"); err == nil || !strings.Contains(out, "remove the file") {
		t.Fatalf("deleting a file's policy: %v\n%s", err, out)
	}
	if out, err := tetra(t, b, a, "tracingpolicy", "delete", "nope"); err == nil || !strings.Contains(out, "NotFound") {
		t.Fatalf("deleting a missing policy: %v\n%s", err, out)
	}
}

// TestPolicyDirectoryAbuse: a thousand writes in a second, a 50 MB file and
// a binary file in the policy directory; the agent stays up, reports each
// problem, and enforces what the files say once the writes stop.
func TestPolicyDirectoryAbuse(t *testing.T) {
	b := build(t)
	tg := targets(t, 2)
	dir := policyDir(t)
	file := filepath.Join(dir, "busy.yaml")
	os.WriteFile(file, testutil.KillOnOpenPolicy("busy", tg[0]), 0o644)
	a := startAgent(t, b, "--tracing-policy-dir", dir)

	huge := make([]byte, 50<<20)
	for i := range huge {
		huge[i] = 'a'
	}
	os.WriteFile(filepath.Join(dir, "huge.yaml"), huge, 0o644)
	bin := make([]byte, 4096)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(dir, "binary.yaml"), bin, 0o644)
	start := time.Now()
	for i := 0; time.Since(start) < time.Second; i++ {
		os.WriteFile(file, testutil.KillOnOpenPolicy("busy", tg[i%2]), 0o644)
	}
	os.WriteFile(file, testutil.KillOnOpenPolicy("busy", tg[1]), 0o644)
	waitKilled(t, tg[1], true, 60*time.Second)
	waitKilled(t, tg[0], false, 60*time.Second)
	if a.cmd.ProcessState != nil {
		t.Fatalf("the agent exited: %v\n%s", a.cmd.ProcessState, a.logs)
	}
	// the watcher may reach the 50 MB file after the last edit of busy.yaml
	// (the lanes' emulated CPUs are slow): wait for its refusal
	waitLog(t, a, 30*time.Second, "huge.yaml: file is larger than the 1048576-byte limit", "binary.yaml:")
	if l := list(t, b, a); len(l.Policies) != 1 || l.Policies[0].State != "TP_STATE_ENABLED" {
		t.Fatalf("policies: %+v", l)
	}
}

// TestKilledDuringReload: kill -9 in the middle of a reload, then a
// restart: the policy is the file's version, and no pin of the dead run is
// left in bpffs.
func TestKilledDuringReload(t *testing.T) {
	b := build(t)
	tg := targets(t, 2)
	dir := policyDir(t)
	file := filepath.Join(dir, "p.yaml")
	os.WriteFile(file, testutil.KillOnOpenPolicy("p", tg[0]), 0o644)
	bpfDir := fmt.Sprintf("tetragon-e2e-kill9-%d", time.Now().UnixNano())
	first := startAgent(t, b, "--tracing-policy-dir", dir, "--bpf-dir", bpfDir)
	os.WriteFile(file, testutil.KillOnOpenPolicy("p", tg[1]), 0o644)
	// past the debounce, into the load
	time.Sleep(150 * time.Millisecond)
	first.cmd.Process.Kill()
	first.cmd.Wait()

	second := startAgent(t, b, "--tracing-policy-dir", dir, "--bpf-dir", bpfDir)
	waitKilled(t, tg[1], true, time.Second)
	waitKilled(t, tg[0], false, 10*time.Second)
	pins := "/sys/fs/bpf/" + bpfDir
	if _, err := os.Stat(pins + "_old"); !os.IsNotExist(err) {
		t.Errorf("the dead run's pins are still there: %v", err)
	}
	versions, _ := os.ReadDir(filepath.Join(pins, "policies", "p"))
	if len(versions) != 1 {
		t.Errorf("pinned versions of p: %v, want exactly one", versions)
	}
	second.cmd.Process.Signal(syscall.SIGTERM)
	second.cmd.Wait()
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		t.Errorf("pins left after a clean exit: %v", err)
	}
}
