package main

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/config"
	"github.com/tetragon-lite/tetragon/pkg/metrics"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeValue scrapes the agent's metrics and sums the series of name that
// carry labels.
func scrapeValue(t *testing.T, addr, name string, labels ...string) (float64, bool) {
	t.Helper()
	f, err := metrics.Scrape(addr)
	if err != nil {
		t.Fatal(err)
	}
	return f.Value(name, labels...)
}

// TestMetricsHealthExport runs the agent as the compose file does, with
// metrics, health and an export file on a disk that takes nothing (a FIFO
// nobody reads): health says 503 until the policy enforces, the metrics
// count the workload and the kill, the export's losses are counted in the
// metrics and `tetra status`, and GetEvents clients lose nothing.
func TestMetricsHealthExport(t *testing.T) {
	b := build(t)
	target, policies := enforcedFile(t)
	fifo := filepath.Join(t.TempDir(), "export.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	health, metrics := freeAddr(t), freeAddr(t)

	// health from before the start: refused, then 503, then 200
	codes := make(chan []int, 1)
	go func() {
		var seen []int
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := http.Get("http://" + health + "/healthz")
			if err == nil {
				resp.Body.Close()
				if len(seen) == 0 || seen[len(seen)-1] != resp.StatusCode {
					seen = append(seen, resp.StatusCode)
				}
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		codes <- seen
	}()
	a := startAgent(t, b, "--tracing-policy-dir", policies, "--health-server-address", health,
		"--metrics-server", metrics, "--export-filename", fifo, "--export-queue-size", "8")
	if seen := <-codes; len(seen) != 2 || seen[0] != http.StatusServiceUnavailable || seen[1] != http.StatusOK {
		t.Fatalf("health answers %v, want 503 while starting, then 200", seen)
	}

	cat, _ := filepath.EvalSymlinks("/bin/cat")
	lines := getevents(t, b, a.socket, "-o", "json", "--process", "^"+regexp.QuoteMeta(cat)+"$")
	execs, ok := scrapeValue(t, metrics, "tetragon_events_total", "type", "PROCESS_EXEC")
	if !ok {
		t.Fatal("no tetragon_events_total{type=\"PROCESS_EXEC\"}")
	}
	marker := fmt.Sprintf("/etc/hostname-metrics-%d", time.Now().UnixNano())
	exec.Command("cat", marker).Run()
	err := exec.Command("cat", target).Run()
	if !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s: %v, want killed", target, err)
	}
	// the pipeline flows whatever the export file does
	waitLines(t, lines, marker, 2)
	waitLines(t, lines, target, 3)
	// more events than the export queue (8) holds while nothing reads the
	// FIFO, whatever else the host is doing
	for range 10 {
		exec.Command("true").Run()
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _ := scrapeValue(t, metrics, "tetragon_events_total", "type", "PROCESS_EXEC")
		kills, _ := scrapeValue(t, metrics, "tetragon_policy_actions_total", "policy", "enforcement", "hook", "kprobe:fd_install", "action", "signal")
		lost, _ := scrapeValue(t, metrics, "tetragon_export_queue_events_dropped_total")
		if n >= execs+2 && kills == 1 && lost > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: execs %v (from %v), kills %v (want 1), export queue drops %v (want > 0)", n, execs, kills, lost)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := exec.Command(b.tetra, "--server-address", a.socket, "status").CombinedOutput()
	if err != nil {
		t.Fatalf("tetra status: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Lost, export queue overflow:\s+(\d+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("tetra status has no export queue line:\n%s", out)
	}
	if n, _ := strconv.Atoi(string(m[1])); n == 0 {
		t.Fatalf("tetra status counts no export losses:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^Lost, subscriber drops:\s+0$`).Match(out) {
		t.Errorf("the export's losses show as a GetEvents client's:\n%s", out)
	}

	// a stuck export file does not hold the agent up when it stops
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("agent exit: %v\n%s", err, a.logs)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("stopping took %v", d)
	}
	if !strings.Contains(a.logs.String(), "The export file is not writable in time") {
		t.Errorf("no word of the events left in the export queue:\n%s", a.logs)
	}
}

// TestGCSettings: the agent runs with its own GOGC (config.DefaultGCPercent)
// and no memory limit unless told otherwise, and with those it is given, as
// Go's runtime reports them in the metrics.
func TestGCSettings(t *testing.T) {
	b := build(t)
	for _, c := range []struct {
		args        []string
		gogc, limit float64
	}{
		{nil, config.DefaultGCPercent, math.MaxInt64},
		{[]string{"--gc-percent", "150", "--memory-limit-mb", "300"}, 150, 300 << 20},
	} {
		addr := freeAddr(t)
		a := startAgent(t, b, append([]string{"--metrics-server", addr}, c.args...)...)
		gogc, ok := scrapeValue(t, addr, "go_gc_gogc_percent")
		limit, ok2 := scrapeValue(t, addr, "go_gc_gomemlimit_bytes")
		if !ok || !ok2 || gogc != c.gogc || limit != c.limit {
			t.Errorf("%q: go_gc_gogc_percent %v (%v), go_gc_gomemlimit_bytes %v (%v); want %v and %v", c.args, gogc, ok, limit, ok2, c.gogc, c.limit)
		}
		a.cmd.Process.Signal(syscall.SIGTERM)
		a.cmd.Wait()
	}
}
