package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// enforcedFile makes a file holding "secret\n" and a policy directory with
// the enforcement guide's policy protecting it.
func enforcedFile(t *testing.T) (target, policies string) {
	t.Helper()
	target = filepath.Join(t.TempDir(), "tetragon")
	if err := os.WriteFile(target, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	policies = policyDir(t)
	if err := os.WriteFile(filepath.Join(policies, "enforcement.yaml"), testutil.KillOnOpenPolicy("enforcement", target), 0o644); err != nil {
		t.Fatal(err)
	}
	return target, policies
}

// TestSeedEnforcementFromPolicyDir: the seed's Sigkill policy, read from the
// policy directory at startup, enforces the moment the agent reports ready.
func TestSeedEnforcementFromPolicyDir(t *testing.T) {
	b := build(t)
	target, policies := enforcedFile(t)
	dir := filepath.Dir(target)
	// the agent's own config file lives next to policies; it is no policy
	if err := os.WriteFile(filepath.Join(policies, "tetragon.yaml"), []byte("log-level: info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, b, "--tracing-policy-dir", policies)

	// no sleep: ready means enforcing
	out, err := exec.Command("cat", target).CombinedOutput()
	if !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s right after ready: %v %q, want killed\nagent log:\n%s", target, err, out, a.logs)
	}
	if out, err := exec.Command("cat", filepath.Join(dir, "..", filepath.Base(dir), "tetragon")).CombinedOutput(); err == nil {
		t.Fatalf("cat through a non-canonical path read %q: the policy matches the resolved path", out)
	}
	if strings.Contains(a.logs.String(), "Policy not loaded") {
		t.Fatalf("agent log reports a policy error:\n%s", a.logs)
	}
}

// TestSeedFileMonitoring: the shipped file-monitoring policy, unchanged,
// reports the quickstart's read and write with the compact lines it shows.
func TestSeedFileMonitoring(t *testing.T) {
	b := build(t)
	policy, err := filepath.Abs("../../policies/file-monitoring.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, b, "--tracing-policy", policy)
	host, _ := os.Hostname()
	cat, _ := filepath.EvalSymlinks("/bin/cat")
	sh, _ := filepath.EvalSymlinks("/bin/sh")

	lines := getevents(t, b, a.socket, "-o", "compact", "--color", "never", "--host", "--process", "^"+cat+"$")
	exec.Command("cat", "/etc/shadow").Run()
	got := waitLines(t, lines, "/etc/shadow", 3)
	want := []string{
		fmt.Sprintf("🚀 process %s %s /etc/shadow", host, cat),
		fmt.Sprintf("📚 read    %s %s /etc/shadow", host, cat),
	}
	if got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("cat /etc/shadow:\n%s\nwant first:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	bar := fmt.Sprintf("/etc/bar-e2e-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.Remove(bar) })
	lines = getevents(t, b, a.socket, "-o", "compact", "--color", "never", "--host", "--process", "^"+sh+"$")
	script := "echo foo >> " + bar
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", script, err, out)
	}
	got = waitLines(t, lines, bar, 3)
	want = []string{
		fmt.Sprintf("🚀 process %s %s -c \"%s\"", host, sh, script),
		fmt.Sprintf("📝 write   %s %s %s", host, sh, bar),
		fmt.Sprintf("💥 exit    %s %s -c \"%s\" 0", host, sh, script),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant:\n%s", script, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBadPolicyFileKeepsAgentUp: a broken file is reported with its place;
// the agent starts and serves the good policy next to it, but does not say
// it is ready.
func TestBadPolicyFileKeepsAgentUp(t *testing.T) {
	b := build(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "tetragon")
	os.WriteFile(target, []byte("x"), 0o644)
	policies := t.TempDir()
	os.Chmod(policies, 0o755)
	os.WriteFile(filepath.Join(policies, "a-broken.yaml"), []byte("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: broken\nspec:\n  kprobes:\n  - call: fd_install\n    syscall: false\n    args:\n    - index: 0\n      type: nosuchtype\n"), 0o644)
	os.WriteFile(filepath.Join(policies, "b-unmapped.yaml"), []byte("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: unmapped\nspec:\n  kprobes:\n  - call: no_such_kernel_function\n    syscall: false\n"), 0o644)
	os.WriteFile(filepath.Join(policies, "c-good.yaml"), testutil.KillOnOpenPolicy("enforcement", target), 0o644)
	a := launchAgent(t, b, "--tracing-policy-dir", policies)
	// up and enforcing what loads, but not ready: not everything enforces
	st := a.waitStatus(t, b, "started", func(st agentStatus) bool {
		return len(st.NotReady) > 0 && !strings.HasPrefix(st.NotReady[0], "starting")
	})
	if st.Ready || len(st.NotReady) != 2 || !strings.Contains(st.NotReady[0], "a-broken.yaml:11:13:") ||
		!strings.Contains(st.NotReady[1], `policy "unmapped": b-unmapped.yaml:7:5:`) {
		t.Fatalf("status: %+v, want not ready, naming both broken files", st)
	}

	err := exec.Command("cat", target).Run()
	if !testutil.KilledBySIGKILL(err) {
		t.Fatalf("the good policy does not enforce: cat: %v\nagent log:\n%s", err, a.logs)
	}
	logs := a.logs.String()
	for _, want := range []string{
		"a-broken.yaml:11:13: spec.kprobes[0].args[0].type",
		"b-unmapped.yaml:7:5: spec.kprobes[0]: no_such_kernel_function",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("agent log lacks %q:\n%s", want, logs)
		}
	}
}

// prober runs cat on target as fast as it can until stop is closed, and
// counts the reads that got through and the runs that were killed.
func prober(target string, stop <-chan struct{}) <-chan [2]int {
	res := make(chan [2]int, 1)
	go func() {
		var read, killed int
		for {
			select {
			case <-stop:
				res <- [2]int{read, killed}
				return
			default:
			}
			err := exec.Command("cat", target).Run()
			switch {
			case err == nil:
				read++
			case testutil.KilledBySIGKILL(err):
				killed++
			}
		}
	}()
	return res
}

// TestPersistentEnforcement is the persistent-enforcement seed: with
// --keep-sensors-on-exit the policy keeps killing while the agent is down
// and through its restart, with no gap.
func TestPersistentEnforcement(t *testing.T) {
	b := build(t)
	target, policies := enforcedFile(t)
	bpfDir := fmt.Sprintf("tetragon-keep-%d", time.Now().UnixNano())
	args := []string{"--tracing-policy-dir", policies, "--bpf-dir", bpfDir, "--keep-sensors-on-exit"}
	pins := "/sys/fs/bpf/" + bpfDir

	// a tracepoint's policy too: its hooks are an attach point's object's
	// on every kernel (the file's are the syscall dispatcher's where
	// kprobes are missing)
	tpTarget := target + "-tp"
	os.WriteFile(tpTarget, []byte("secret\n"), 0o644)
	os.WriteFile(filepath.Join(policies, "tracepoint.yaml"), testutil.OpenatTracepointPolicy("tracepoint-enforcement", tpTarget, "Sigkill"), 0o644)
	first := startAgent(t, b, args...)
	if err := exec.Command("cat", tpTarget).Run(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s: %v, want killed by the tracepoint policy", tpTarget, err)
	}
	pf := filepath.Join(t.TempDir(), "api.yaml")
	os.WriteFile(pf, testutil.KillOnOpenPolicy("api-added", target+"-api"), 0o644)
	if out, err := exec.Command(b.tetra, "--server-address", first.socket, "tracingpolicy", "add", pf).CombinedOutput(); err != nil {
		t.Fatalf("tracingpolicy add: %v\n%s", err, out)
	}
	stop := make(chan struct{})
	counts := prober(target, stop)

	first.cmd.Process.Signal(syscall.SIGINT)
	if err := first.cmd.Wait(); err != nil {
		t.Fatalf("agent exit: %v\n%s", err, first.logs)
	}
	// down: the pinned policy still enforces
	err := exec.Command("cat", target).Run()
	if !testutil.KilledBySIGKILL(err) {
		t.Fatalf("agent down: cat %s: %v, want killed", target, err)
	}
	if _, err := os.Stat(filepath.Join(pins, "policies", "enforcement")); err != nil {
		t.Fatalf("no pinned policy while the agent is down: %v", err)
	}
	// what happens while the agent is down is delivered after it returns
	const downtimeRuns = 5
	for range downtimeRuns {
		exec.Command("true").Run()
	}
	progs := baseProgs(t, pins)
	dprogs, dispatched := dispatcherProgs(t, pins)
	pprogs := pointProgs(t, pins)
	if len(pprogs) == 0 {
		t.Fatalf("no attach point's object pinned under %s", pins)
	}

	second := startAgent(t, b, args...)
	// the same binary: the base sensor is adopted, not loaded again, and
	// so is the syscall dispatcher, where the policies use it
	if now := baseProgs(t, pins); !slices.Equal(now, progs) {
		t.Errorf("base sensor programs %v after the restart, want the adopted %v", now, progs)
	}
	if now, _ := dispatcherProgs(t, pins); dispatched && !slices.Equal(now, dprogs) {
		t.Errorf("syscall dispatcher programs %v after the restart, want the adopted %v", now, dprogs)
	}
	if dispatched && !strings.Contains(second.logs.String(), "Adopted the previous run's syscall dispatcher") {
		t.Errorf("the restart did not adopt the syscall dispatcher:\n%s", second.logs)
	}
	// and so are the attach points' objects
	if now := pointProgs(t, pins); !slices.Equal(now, pprogs) {
		t.Errorf("attach points' programs %v after the restart, want the adopted %v", now, pprogs)
	}
	if err := exec.Command("cat", tpTarget).Run(); !testutil.KilledBySIGKILL(err) {
		t.Errorf("after the restart: cat %s: %v, want killed by the tracepoint policy", tpTarget, err)
	}
	t.Logf("syscall dispatcher pinned and adopted: %v", dispatched)
	if out, err := exec.Command(b.tetra, "--server-address", second.socket, "tracingpolicy", "list").CombinedOutput(); err != nil || !strings.Contains(string(out), "api-added") {
		t.Errorf("the API-added policy did not survive the restart: %v\n%s", err, out)
	}
	close(stop)
	got := <-counts
	if got[0] != 0 || got[1] == 0 {
		t.Fatalf("during the restart: %d reads got through, %d killed; want 0 and some", got[0], got[1])
	}
	t.Logf("restart: %d attempts, all killed", got[1])
	for _, want := range []string{"Found pinned sensors of a previous run", "Adopted the previous run's base sensor", "Removed the previous run's pinned sensors"} {
		if !strings.Contains(second.logs.String(), want) {
			t.Errorf("second agent's log lacks %q:\n%s", want, second.logs)
		}
	}
	if _, err := os.Stat(pins + "_old"); !os.IsNotExist(err) {
		t.Errorf("%s_old is still there: %v", pins, err)
	}
	out, err := exec.Command(b.tetra, "--server-address", second.socket, "status", "-o", "json").CombinedOutput()
	var st struct {
		Agent struct {
			DowntimeRecords string `json:"downtime_records"`
		} `json:"agent"`
	}
	if err != nil || json.Unmarshal(out, &st) != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// each true is a fork, an exec and an exit; the prober adds more
	if n, _ := strconv.Atoi(st.Agent.DowntimeRecords); n < 3*downtimeRuns {
		t.Errorf("%s records from the downtime delivered, want at least %d", st.Agent.DowntimeRecords, 3*downtimeRuns)
	}

	// removing the pins is what ends enforcement (the kernel detaches a
	// link whose last reference was its pin a moment later)
	second.cmd.Process.Signal(syscall.SIGTERM)
	second.cmd.Wait()
	if err := os.RemoveAll(pins); err != nil {
		t.Fatal(err)
	}
	waitKilled(t, target, false, 10*time.Second)
}

// TestTracepointAndUprobePolicies: tracepoints: and uprobes: hooks through
// the agent, with the compact lines tetra prints for them. The uprobe goes
// on main.main of a copy of tetra (a binary with its symbols), with
// Sigkill, so running the copy kills it; the tracepoint reports opens of one
// file.
func TestTracepointAndUprobePolicies(t *testing.T) {
	b := build(t)
	testutil.RequireFeature(t, "tracepoint")
	testutil.RequireFeature(t, "uprobe")
	dir := t.TempDir()
	probed := filepath.Join(dir, "tetra-probed")
	data, err := os.ReadFile(b.tetra)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(probed, data, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "marker")
	if err := os.WriteFile(marker, []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, fmt.Appendf(testutil.OpenatTracepointPolicy("kinds", marker, ""), `  uprobes:
  - path: %q
    symbols:
    - "main.main"
    selectors:
    - matchActions:
      - action: Sigkill
`, probed), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, b, "--tracing-policy", policy)
	host, _ := os.Hostname()
	cat, _ := filepath.EvalSymlinks("/bin/cat")

	lines := getevents(t, b, a.socket, "-o", "compact", "--color", "never", "--host")
	if err := exec.Command("cat", marker).Run(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(probed, "version").Run(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("%s version: %v, want killed by the uprobe's Sigkill", probed, err)
	}
	// the policy events, among the exec and exit lines of every process
	// (the compact tracepoint line, as Tetragon's, names no argument: the
	// policy's selector keeps cat's open of the marker only)
	var policyLines []string
	for len(policyLines) < 2 {
		l := waitLines(t, lines, "", 1)[0]
		if strings.HasPrefix(l, "⁉️") || strings.HasPrefix(l, "🕵️") {
			policyLines = append(policyLines, l)
		}
	}
	want := []string{
		fmt.Sprintf("⁉️ tracepoint %s %s syscalls sys_enter_openat", host, cat),
		fmt.Sprintf("🕵️ uprobe  %s %s %s main.main", host, probed, probed),
	}
	if strings.Join(policyLines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("policy events:\n%s\nwant:\n%s", strings.Join(policyLines, "\n"), strings.Join(want, "\n"))
	}
}

// TestRestartReportsEachCallOnce: through a restart with
// --keep-sensors-on-exit of the same binary, every call is reported once.
// Every cat below is a process of its own, killed by the policy: one exec
// and one kill event per pid. The new run adopts the previous run's base
// sensor, so each exec is recorded once, and its dispatcher or attach
// point's object, where the policy's hook replaces its old self in one
// swap, so each kill is too. (An agent of another version runs both runs'
// hooks for a moment, and drops the old run's records of what its own
// reported from 1 ms after they started: handoverSlack.)
func TestRestartReportsEachCallOnce(t *testing.T) {
	b := build(t)
	target, policies := enforcedFile(t)
	bpfDir := fmt.Sprintf("tetragon-once-%d", time.Now().UnixNano())
	export := filepath.Join(t.TempDir(), "events.json")
	args := []string{"--tracing-policy-dir", policies, "--bpf-dir", bpfDir, "--keep-sensors-on-exit"}

	first := startAgent(t, b, args...)
	stop := make(chan struct{})
	counts := prober(target, stop)
	first.cmd.Process.Signal(syscall.SIGINT)
	if err := first.cmd.Wait(); err != nil {
		t.Fatalf("agent exit: %v\n%s", err, first.logs)
	}
	second := startAgent(t, b, append(args, "--export-filename", export)...)
	// on after the restart: calls both runs saw, then the new run's alone
	time.Sleep(time.Second)
	close(stop)
	got := <-counts
	if got[0] != 0 || got[1] == 0 {
		t.Fatalf("%d reads got through, %d killed; want 0 and some", got[0], got[1])
	}
	// the agent is through the backlog and the last cats' kills when the
	// export stops growing (under the lanes' emulation, many seconds)
	for size, still, deadline := int64(-1), 0, time.Now().Add(90*time.Second); still < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		fi, err := os.Stat(export)
		if err == nil && fi.Size() == size {
			still++
			continue
		}
		if err == nil {
			size = fi.Size()
		}
		still = 0
	}
	second.cmd.Process.Signal(syscall.SIGTERM)
	second.cmd.Wait()
	// the same binary adopts every object: each old hook is replaced by
	// its successor in one swap, so no call runs both, and none of the old
	// hooks' records is one the new ones reported too
	seen := regexp.MustCompile(`Delivered the events recorded while the agent was down .*seen_by_this_run=([0-9]+)`).FindStringSubmatch(second.logs.String())
	if seen == nil {
		t.Fatalf("the adopting agent did not deliver the downtime's events:\n%s", second.logs)
	}
	if seen[1] != "0" {
		t.Errorf("%s of the previous run's records were reported by the new hooks too, want 0", seen[1])
	}

	data, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	type proc struct {
		Pid int `json:"pid"`
	}
	kills, execs := map[int]int{}, map[int]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev struct {
			Exec *struct {
				Process proc `json:"process"`
			} `json:"process_exec"`
			Kprobe *struct {
				Process proc   `json:"process"`
				Action  string `json:"action"`
			} `json:"process_kprobe"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		switch {
		case ev.Kprobe != nil && ev.Kprobe.Action == "KPROBE_ACTION_SIGKILL":
			kills[ev.Kprobe.Process.Pid]++
		case ev.Exec != nil:
			execs[ev.Exec.Process.Pid]++
		}
	}
	// the cats' execs: whatever binary cat is here (busybox in the lanes)
	for pid := range execs {
		if kills[pid] == 0 {
			delete(execs, pid)
		}
	}
	if len(kills) == 0 {
		t.Fatalf("no kill reported in %d bytes of export", len(data))
	}
	twice := func(n map[int]int) (pids []int) {
		for pid, c := range n {
			if c > 1 {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	if k := twice(kills); len(k) > 0 {
		t.Errorf("pids reported killed twice: %d (%v); want none", len(k), k)
	}
	// one base sensor, adopted by the second run, recorded every exec
	if e := twice(execs); len(e) > 0 {
		t.Errorf("pids reported exec'd twice: %d (%v); want none", len(e), e)
	}
	t.Logf("%d kills and %d execs reported, none twice", len(kills), len(execs))
}
