package logship

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// repo is the repository root, from this package's directory (go test runs
// a package's tests in its directory).
const repo = "../.."

// exportedProcess is what the test reads of a process in an exported event.
type exportedProcess struct {
	ExecID    string `json:"exec_id"`
	Binary    string `json:"binary"`
	Arguments string `json:"arguments"`
}

// record is one log record of the debug exporter's detailed output.
type record struct {
	host      string // the resource's host.name
	timestamp string // the record's Timestamp line
	attrs     map[string]string
}

// parseDebugOutput reads the debug exporter's detailed text: resources hold
// "-> host.name: Str(...)", records start at "LogRecord #" and carry
// "-> key: Type(value)" attribute lines.
func parseDebugOutput(text string) []record {
	var recs []record
	var host string
	var cur *record
	inAttrs := false
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "ResourceLog #"):
			host, cur, inAttrs = "", nil, false
		case strings.HasPrefix(line, "LogRecord #"):
			recs = append(recs, record{host: host, attrs: map[string]string{}})
			cur, inAttrs = &recs[len(recs)-1], false
		case cur == nil && strings.HasPrefix(trimmed, "-> host.name: Str("):
			host = strings.TrimSuffix(strings.TrimPrefix(trimmed, "-> host.name: Str("), ")")
		case cur != nil && strings.HasPrefix(line, "Timestamp: "):
			cur.timestamp = strings.TrimPrefix(line, "Timestamp: ")
		case cur != nil && line == "Attributes:":
			inAttrs = true
		case cur != nil && inAttrs && strings.HasPrefix(trimmed, "-> "):
			k, v, ok := strings.Cut(strings.TrimPrefix(trimmed, "-> "), ": ")
			if ok {
				cur.attrs[k] = v
			}
		case cur != nil && inAttrs:
			inAttrs = false
		}
	}
	return recs
}

// process decodes the attribute key of r, a map ("Map({...})") holding a
// process object.
func (r record) process(key string) (exportedProcess, bool) {
	v, ok := r.attrs[key]
	if !ok || !strings.HasPrefix(v, "Map(") {
		return exportedProcess{}, false
	}
	var ev struct {
		Process exportedProcess `json:"process"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(v, "Map("), ")")), &ev); err != nil {
		return exportedProcess{}, false
	}
	return ev.Process, true
}

// goBuild builds a command of the repository into dir.
func goBuild(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, "./"+pkg)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// buildCollector returns the collector scripts/otelcol/build.sh builds (or
// has cached). Without it the example is untested: the test fails.
func buildCollector(t *testing.T) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(repo, "scripts/otelcol/build.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the OpenTelemetry Collector could not be built (scripts/otelcol/build.sh: %v), so the log-shipper example is untested:\n%s", err, &stderr)
	}
	return strings.TrimSpace(string(out))
}

// ready polls `tetra status -o json` until the agent reports ready.
func ready(t *testing.T, tetra, sock string, logs *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _ := exec.Command(tetra, "--server-address", sock, "status", "-o", "json").Output()
		var st struct {
			Agent struct {
				Ready bool `json:"ready"`
			} `json:"agent"`
		}
		if json.Unmarshal(out, &st) == nil && st.Agent.Ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not ready after 90s: %s\nagent log:\n%s", out, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// start runs cmd with its output in logs, and stops it (SIGTERM) when the
// test ends.
func start(t *testing.T, name string, cmd *exec.Cmd, logs *bytes.Buffer) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs)
		}
	})
}

// TestCollectorShipsExportFile runs the agent with --export-filename and the
// collector with docs/examples/otelcol.yaml as committed, runs a marked
// workload, and checks that the collector exported its exec and exit events
// with the JSON parsed into attributes, the event's time as the record's
// timestamp and node_name as the resource's host.name.
func TestCollectorShipsExportFile(t *testing.T) {
	testutil.RequireRoot(t)
	collector := buildCollector(t)
	bins := t.TempDir()
	tetragon, tetra := goBuild(t, bins, "cmd/tetragon"), goBuild(t, bins, "cmd/tetra")

	dir := t.TempDir()
	exportFile := filepath.Join(dir, "tetragon.log")
	exported := filepath.Join(dir, "exported.txt")
	sock := filepath.Join(dir, "tetragon.sock")
	id := time.Now().UnixNano()
	bpfDir := fmt.Sprintf("tetragon-e2e-logship-%d", id)
	node := fmt.Sprintf("logship-node-%d", id)
	t.Cleanup(func() { os.RemoveAll("/sys/fs/bpf/" + bpfDir) })

	var agentLogs, collectorLogs bytes.Buffer
	start(t, "agent", exec.Command(tetragon, "--server-address", sock, "--config-dir", t.TempDir(),
		"--bpf-dir", bpfDir, "--api-policy-dir", filepath.Join(dir, "api-policies"),
		"--node-name", node, "--export-filename", exportFile), &agentLogs)
	ready(t, tetra, sock, &agentLogs)

	col := exec.Command(collector, "--config", filepath.Join(repo, "docs/examples/otelcol.yaml"))
	col.Env = append(os.Environ(), "TETRAGON_EXPORT_FILE="+exportFile, "OTELCOL_DEBUG_OUTPUT="+exported)
	start(t, "collector", col, &collectorLogs)

	marker := fmt.Sprintf("logship-marker-%d", id)
	if err := exec.Command("/bin/true", marker).Run(); err != nil {
		t.Fatalf("/bin/true %s: %v", marker, err)
	}
	binary, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}

	var execRec, exitRec *record
	var execProc, exitProc exportedProcess
	deadline := time.Now().Add(60 * time.Second)
	for execRec == nil || exitRec == nil {
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(exported)
			file, _ := os.ReadFile(exportFile)
			t.Fatalf("after 60s the collector exported exec %v, exit %v of %s %s\nexport file:\n%s\ncollector output:\n%s",
				execRec != nil, exitRec != nil, binary, marker, file, out)
		}
		time.Sleep(200 * time.Millisecond)
		out, err := os.ReadFile(exported)
		if err != nil {
			continue
		}
		recs := parseDebugOutput(string(out))
		for i := range recs {
			if p, ok := recs[i].process("process_exec"); ok && p.Arguments == marker {
				execRec, execProc = &recs[i], p
			}
			if p, ok := recs[i].process("process_exit"); ok && p.Arguments == marker {
				exitRec, exitProc = &recs[i], p
			}
		}
	}

	for name, c := range map[string]struct {
		rec  *record
		proc exportedProcess
	}{"exec": {execRec, execProc}, "exit": {exitRec, exitProc}} {
		if c.proc.Binary != binary {
			t.Errorf("%s: binary %q, want %q", name, c.proc.Binary, binary)
		}
		if c.proc.ExecID == "" || c.proc.ExecID != execProc.ExecID {
			t.Errorf("%s: exec_id %q, want the exec's %q", name, c.proc.ExecID, execProc.ExecID)
		}
		if c.rec.host != node {
			t.Errorf("%s: resource host.name %q, want the agent's --node-name %q", name, c.rec.host, node)
		}
		// the event's time became the record's timestamp
		ts, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", c.rec.timestamp)
		evTime, err2 := time.Parse(time.RFC3339Nano, strings.TrimSuffix(strings.TrimPrefix(c.rec.attrs["time"], "Str("), ")"))
		if err != nil || err2 != nil || !ts.Equal(evTime) {
			t.Errorf("%s: record timestamp %q (%v), event time %q (%v): want the same instant", name, c.rec.timestamp, err, c.rec.attrs["time"], err2)
		}
		if _, ok := c.rec.attrs["node_name"]; ok {
			t.Errorf("%s: node_name is still an attribute; the example moves it to the resource", name)
		}
	}
}
