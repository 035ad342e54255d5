package metrics_test

// The metrics of a real agent, scraped from its real endpoint and parsed
// with the Prometheus text parser, after real workloads.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/agent"
	"github.com/tetragon-lite/tetragon/pkg/config"
	"github.com/tetragon-lite/tetragon/pkg/metrics"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// startAgent runs an agent with its own socket and pin directory (packages'
// tests run in parallel) and the metrics endpoint on a free loopback port.
func startAgent(t *testing.T, policyDir string) *agent.Agent {
	t.Helper()
	testutil.RequireRoot(t)
	cfg := config.Config{
		ServerAddress:    filepath.Join(t.TempDir(), "tetragon.sock"),
		LogLevel:         "info",
		LogFormat:        "text",
		BPFDir:           fmt.Sprintf("tetragon-metrics-test-%d", os.Getpid()),
		ProcRoot:         "/proc",
		EventQueueSize:   65536,
		SubscriberQueue:  10000,
		ProcessCacheSize: 4321,
		TracingPolicyDir: policyDir,
		// a socket nobody serves: the Docker metrics are there, disconnected
		DockerSocket:  filepath.Join(t.TempDir(), "no-docker.sock"),
		MetricsServer: "127.0.0.1:0",
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.Start(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		cancel()
		t.Fatalf("starting agent: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := a.Wait(); err != nil {
			t.Errorf("agent stopped with: %v", err)
		}
	})
	return a
}

type families = metrics.Families

// scrape GETs /metrics and parses it as Prometheus does.
func scrape(t *testing.T, addr string) families {
	t.Helper()
	f, err := metrics.Scrape(addr)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// get fails the test when the series is missing.
func get(t *testing.T, f families, name string, labels ...string) float64 {
	t.Helper()
	v, ok := f.Value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v in the scrape; families: %s", name, labels, names(f))
	}
	return v
}

func names(f families) string {
	var n []string
	for k := range f {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

// eventually scrapes until cond holds.
func eventually(t *testing.T, addr string, what string, cond func(families) bool) families {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		f := scrape(t, addr)
		if cond(f) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestScrapeRealAgent(t *testing.T) {
	testutil.RequireRoot(t)
	work := t.TempDir()
	target, other := filepath.Join(work, "tetragon"), filepath.Join(work, "other")
	for _, f := range []string{target, other} {
		if err := os.WriteFile(f, []byte("secret\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policies := t.TempDir()
	policyFile := filepath.Join(policies, "kill.yaml")
	if err := os.WriteFile(policyFile, testutil.KillOnOpenPolicy("metrics-kill", target), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, policies)
	addr := a.MetricsAddress()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("metrics address %q", addr)
	}
	hook := []string{"policy", "metrics-kill", "hook", "kprobe:fd_install"}

	f := scrape(t, addr)
	execs := get(t, f, "tetragon_events_total", "type", "PROCESS_EXEC")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"tetragon_tracingpolicy_loaded", []string{"state", "enabled"}, 1},
		{"tetragon_tracingpolicy_loaded", []string{"state", "load_error"}, 0},
		{"tetragon_policy_loads_total", nil, 1},
		{"tetragon_policy_load_errors_total", nil, 0},
		{"tetragon_policy_actions_total", append(hook, "action", "signal"), 0},
		{"tetragon_policy_reload_latency_seconds", nil, 0},
		{"tetragon_process_cache_capacity", nil, 4321},
		{"tetragon_docker_connected", nil, 0},
		{"tetragon_observer_ringbuf_queue_events_lost_total", nil, 0},
		{"tetragon_decode_errors_total", nil, 0},
		{"tetragon_build_info", nil, 1},
	} {
		if got := get(t, f, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"tetragon_process_cache_size", "go_goroutines", "process_resident_memory_bytes"} {
		if v := get(t, f, name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	get(t, f, "tetragon_docker_lookups_total")
	if _, ok := f.Value("tetragon_events_exported_total"); ok {
		t.Error("export metrics without --export-filename")
	}

	// the workload: a cat that runs, and one the policy kills
	cmd := exec.Command("cat", other)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cat %s: %v %s", other, err, out)
	}
	if out, err := exec.Command("cat", target).CombinedOutput(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s: %v %q, want killed", target, err, out)
	}
	f = eventually(t, addr, "the workload's events", func(f families) bool {
		n, _ := f.Value("tetragon_events_total", "type", "PROCESS_EXEC")
		ev, _ := f.Value("tetragon_policy_events_total", hook...)
		return n >= execs+2 && ev == 1
	})
	if got := get(t, f, "tetragon_policy_actions_total", append(hook, "action", "signal")...); got != 1 {
		t.Errorf("actions after one kill: %v, want 1", got)
	}
	if got := get(t, f, "tetragon_policy_hook_matched_total", hook...); got != 1 {
		t.Errorf("matched calls after one kill: %v, want 1", got)
	}
	if got := get(t, f, "tetragon_policy_hook_calls_total", hook...); got < 2 {
		t.Errorf("hook calls %v: both cats opened a file", got)
	}
	if got := get(t, f, "tetragon_observer_ringbuf_events_received_total"); got < 4 {
		t.Errorf("records read %v, want the cats' at least", got)
	}
	if got := get(t, f, "tetragon_events_total", "type", "PROCESS_EXIT"); got < 2 {
		t.Errorf("exits %v, want the cats' at least", got)
	}

	// a changed file reloads: one latency sample, one more load
	if err := os.WriteFile(policyFile, testutil.KillOnOpenPolicy("metrics-kill", target, other), 0o644); err != nil {
		t.Fatal(err)
	}
	f = eventually(t, addr, "the reload", func(f families) bool {
		n, _ := f.Value("tetragon_policy_reload_latency_seconds")
		return n == 1
	})
	if got := get(t, f, "tetragon_policy_loads_total"); got != 2 {
		t.Errorf("loads after a reload: %v, want 2", got)
	}
	h := f["tetragon_policy_reload_latency_seconds"].GetMetric()[0].GetHistogram()
	// at least the debounce; at most what a reload of one hook may take
	if sum := h.GetSampleSum(); sum < 0.1 || sum > 60 {
		t.Errorf("reload latency %vs", sum)
	}
	if out, err := exec.Command("cat", other).CombinedOutput(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s after the reload: %v %q, want killed", other, err, out)
	}

	// a broken file: a load error, no reload, no latency sample
	broken := "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: broken\nspec:\n  kprobes:\n  - call: fd_install\n    syscall: false\n    args:\n    - index: 0\n      type: nosuchtype\n"
	if err := os.WriteFile(filepath.Join(policies, "broken.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	f = eventually(t, addr, "the load error", func(f families) bool {
		n, _ := f.Value("tetragon_policy_load_errors_total")
		return n == 1
	})
	if got := get(t, f, "tetragon_policy_reload_latency_seconds"); got != 1 {
		t.Errorf("latency samples after a failed load: %v, want still 1", got)
	}
	if got := get(t, f, "tetragon_policy_loads_total"); got != 2 {
		t.Errorf("loads after a failed load: %v, want still 2", got)
	}

	testProgramStats(t, addr, other)
}

// testProgramStats: the BPF programs' run counters, reported when
// kernel.bpf_stats_enabled is 1 only. The switch is system-wide: it is
// turned on for a moment and put back.
func testProgramStats(t *testing.T, addr, target string) {
	const sysctl = "/proc/sys/kernel/bpf_stats_enabled"
	was, err := os.ReadFile(sysctl)
	if err != nil {
		t.Skipf("kernel lacks BPF run-time stats (bpf_stats, no %s): %v", sysctl, err)
	}
	if strings.TrimSpace(string(was)) == "0" {
		f := scrape(t, addr)
		if got := get(t, f, "tetragon_bpf_stats_enabled"); got != 0 {
			t.Errorf("tetragon_bpf_stats_enabled %v with the sysctl at 0", got)
		}
		if _, ok := f.Value("tetragon_overhead_program_runs_total"); ok {
			t.Error("program run counts reported with kernel.bpf_stats_enabled 0")
		}
		if err := os.WriteFile(sysctl, []byte("1"), 0o644); err != nil {
			t.Fatalf("turning on BPF stats as root: %v", err)
		}
		t.Cleanup(func() { os.WriteFile(sysctl, []byte("0"), 0o644) })
	}
	if out, err := exec.Command("cat", target).CombinedOutput(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s: %v %q, want killed", target, err, out)
	}
	// a kprobe hook has programs of its own; without kprobes the hook is
	// served by the syscall dispatcher, whose programs serve every policy
	// (fd_install: at the open family's exit, whose attached filter counts
	// the programs it jumps to)
	hookLabels := []string{"policy", "metrics-kill", "attach", "fd_install"}
	if !testutil.Kernel(t).Map()["kprobe"] {
		hookLabels = []string{"sensor", "syscall-dispatcher", "program", "disp_sys_exit"}
	}
	f := eventually(t, addr, "program run counts", func(f families) bool {
		base, _ := f.Value("tetragon_overhead_program_runs_total", "sensor", "base", "program", "handle_exec")
		hook, _ := f.Value("tetragon_overhead_program_runs_total", hookLabels...)
		return base > 0 && hook > 0
	})
	if got := get(t, f, "tetragon_bpf_stats_enabled"); got != 1 {
		t.Errorf("tetragon_bpf_stats_enabled %v with the sysctl at 1", got)
	}
	if got := get(t, f, "tetragon_overhead_program_seconds_total", hookLabels...); got <= 0 {
		t.Errorf("hook run time %v, want > 0", got)
	}
	// the base sensor's three programs, known by their pins
	for _, p := range []string{"handle_exec", "handle_exit", "handle_fork"} {
		if _, ok := f.Value("tetragon_overhead_program_runs_total", "sensor", "base", "program", p); !ok {
			t.Errorf("no run count for the base sensor's %s", p)
		}
	}
}
