package exporter_test

// The exporter of a real agent: real workloads, the file read back and
// parsed line by line.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tetragon-lite/tetragon/pkg/agent"
	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/config"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

var agents atomic.Int32

// startAgent runs an agent with its own socket and pin directory (packages'
// tests run in parallel), no policies, and the export settings of set. The
// returned stop stops it (at most once; cleanup does it otherwise).
func startAgent(t *testing.T, set func(*config.Config)) (*agent.Agent, func()) {
	t.Helper()
	testutil.RequireRoot(t)
	cfg := config.Config{
		ServerAddress:    filepath.Join(t.TempDir(), "tetragon.sock"),
		LogLevel:         "info",
		LogFormat:        "text",
		BPFDir:           fmt.Sprintf("tetragon-export-test-%d-%d", os.Getpid(), agents.Add(1)),
		ProcRoot:         "/proc",
		EventQueueSize:   65536,
		SubscriberQueue:  10000,
		ProcessCacheSize: 65536,
		ExportMaxSize:    10,
		ExportBackups:    5,
		ExportRate:       -1,
		ExportQueue:      10000,
	}
	set(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.Start(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		cancel()
		t.Fatalf("starting agent: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := a.Wait(); err != nil {
			t.Errorf("agent stopped with: %v", err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// workload runs n processes of /bin/true with arguments marker-<i> in a
// shell loop.
func workload(t *testing.T, marker string, n int) {
	t.Helper()
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do /bin/true %s-$i; i=$((i+1)); done`, n, marker)
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("workload: %v %s", err, out)
	}
}

// line is the part of an exported line the tests look at.
type line struct {
	raw         string
	ProcessExec *struct {
		Process struct {
			Binary    string `json:"binary"`
			Arguments string `json:"arguments"`
		} `json:"process"`
	} `json:"process_exec"`
	ProcessExit *struct {
		Process struct {
			Arguments string `json:"arguments"`
		} `json:"process"`
	} `json:"process_exit"`
	RateLimitInfo *struct {
		Dropped string `json:"number_of_dropped_process_events"`
	} `json:"rate_limit_info"`
}

func (l line) args() string {
	if l.ProcessExec != nil {
		return l.ProcessExec.Process.Arguments
	}
	if l.ProcessExit != nil {
		return l.ProcessExit.Process.Arguments
	}
	return ""
}

// readExport reads the export file and its rotated, maybe gzipped, copies;
// every line must be one whole JSON object. settled is false while a
// rotated copy is being compressed (both it and its .gz exist then), or
// while the agent is writing (writing) and the active file ends in part of
// a line: a batch is one write(2), but a reader may see a regular file's
// write half done, since the kernel copies it in page by page.
func readExport(t *testing.T, dir string, writing bool) (lines []line, files []string, settled bool) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	settled = true
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		files = append(files, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			settled = false // compressed and removed since the listing
			continue
		}
		if strings.HasSuffix(path, ".gz") {
			gz, err := gzip.NewReader(bytes.NewReader(data))
			if err == nil {
				data, err = io.ReadAll(gz)
			}
			if err != nil {
				settled = false // still being written
				continue
			}
		} else if e.Name() != "tetragon.log" {
			settled = false // a rotated copy not compressed yet
		}
		for _, l := range strings.SplitAfter(string(data), "\n") {
			if l == "" {
				continue
			}
			if !strings.HasSuffix(l, "\n") {
				if writing && e.Name() == "tetragon.log" {
					settled = false
					break
				}
				t.Fatalf("%s: a line without its end: %q", e.Name(), l)
			}
			var ln line
			if err := json.Unmarshal([]byte(l), &ln); err != nil {
				t.Fatalf("%s: a line that is not JSON: %v\n%s", e.Name(), err, l)
			}
			ln.raw = strings.TrimSuffix(l, "\n")
			lines = append(lines, ln)
		}
	}
	return lines, files, settled
}

// marked returns the lines of processes with marker in their arguments.
func marked(lines []line, marker string) (execs, exits []line) {
	for _, l := range lines {
		if !strings.Contains(l.args(), marker) {
			continue
		}
		if l.ProcessExec != nil {
			execs = append(execs, l)
		} else {
			exits = append(exits, l)
		}
	}
	return execs, exits
}

// TestExportFiltersRotation: an allow list keeps the execs only, a deny
// list drops one binary, the file rotates at its size into gzipped copies,
// and no line is lost or split across files.
func TestExportFiltersRotation(t *testing.T) {
	dir := t.TempDir()
	marker := fmt.Sprintf("export-%d", time.Now().UnixNano())
	a, _ := startAgent(t, func(c *config.Config) {
		c.ExportFilename = filepath.Join(dir, "tetragon.log")
		c.ExportMaxSize = 1
		c.ExportCompress = true
		c.ExportAllow = `{"event_set":["PROCESS_EXEC"]}`
		// by arguments, not binary: on busybox systems sleep and true are
		// one binary
		c.ExportDeny = fmt.Sprintf("{\"arguments_regex\":[\"^0 %s$\"]}\n{\"pid\":[1]}", marker)
	})
	// sleep refuses the marker as a duration, after its exec
	exec.Command("sleep", "0", marker).Run()
	// an exec line is ~2 KB: 800 of them are more than 1 MiB
	const n = 800
	workload(t, marker, n)

	var lines []line
	var files []string
	var execs, exits []line
	deadline := time.Now().Add(30 * time.Second)
	for {
		var settled bool
		lines, files, settled = readExport(t, dir, true)
		execs, exits = marked(lines, marker)
		if len(execs) >= n+1 && settled && len(files) > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d of %d execs exported, files %v (rotated at 1 MiB, gzipped)", len(execs), n+1, files)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(exits) != 0 {
		t.Fatalf("the allow list let through %d exits: %s", len(exits), exits[0].raw)
	}
	seen := map[string]bool{}
	for _, l := range execs {
		switch args := l.args(); {
		case args == "0 "+marker:
			t.Fatalf("the deny list let through: %s", l.raw)
		case strings.HasPrefix(args, marker+"-"):
			if seen[args] {
				t.Fatalf("repeated line: %s", l.raw)
			}
			seen[args] = true
		}
	}
	// and the shell that ran them, whose script has the marker
	if len(seen) != n || len(execs) != n+1 {
		t.Fatalf("exported %d execs of true, %d of the workload; want %d and %d", len(seen), len(execs), n, n+1)
	}
	for _, l := range lines {
		if l.ProcessExec == nil {
			t.Fatalf("the allow list let through: %s", l.raw)
		}
	}
	// the line is the API's JSON: it reads back into the event
	var ev api.GetEventsResponse
	if err := protojson.Unmarshal([]byte(execs[0].raw), &ev); err != nil || ev.GetProcessExec().GetProcess().GetExecId() == "" || ev.GetNodeName() == "" {
		t.Fatalf("line does not read back as an event (%v): %s", err, execs[0].raw)
	}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			continue // a copy being compressed
		}
		if st.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over the 1 MiB limit", f, st.Size())
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: events are for root only", f, st.Mode())
		}
	}
	if l := a.Status().GetLosses(); l.GetExportQueueOverflow() != 0 || l.GetExportWriteErrors() != 0 {
		t.Errorf("export losses: %v", l)
	}
}

// TestExportRateLimit: past the limit events are dropped, counted, and
// reported in rate_limit_info lines, the last one when the agent stops.
func TestExportRateLimit(t *testing.T) {
	dir := t.TempDir()
	marker := fmt.Sprintf("ratelimit-%d", time.Now().UnixNano())
	const limit = 60
	a, stop := startAgent(t, func(c *config.Config) {
		c.ExportFilename = filepath.Join(dir, "tetragon.log")
		c.ExportRate = limit
	})
	workload(t, marker, 200)
	// every event of the workload went through the exporter: passed or dropped
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := a.Status()
		l := st.GetLosses()
		if l.GetExportRateLimited() >= 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rate-limited events: %d, want the workload's 400 events less the limit", l.GetExportRateLimited())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	dropped := a.Status().GetLosses().GetExportRateLimited()

	lines, _, _ := readExport(t, dir, false)
	var events, reported uint64
	for _, l := range lines {
		if l.RateLimitInfo == nil {
			events++
			continue
		}
		var n uint64
		if _, err := fmt.Sscan(l.RateLimitInfo.Dropped, &n); err != nil || n == 0 {
			t.Fatalf("rate_limit_info line: %s", l.raw)
		}
		reported += n
		if !strings.Contains(l.raw, `"node_name":`) || !strings.Contains(l.raw, `"time":"`) {
			t.Fatalf("rate_limit_info line lacks node or time: %s", l.raw)
		}
	}
	// a minute's worth at once, then one a second
	if events < limit || events > limit+30 {
		t.Errorf("%d events written with a limit of %d a minute", events, limit)
	}
	if reported != dropped {
		t.Errorf("rate_limit_info lines report %d dropped, the counter says %d", reported, dropped)
	}
}

// TestExportSlowDiskDoesNotBlock: an export file that takes nothing (a FIFO
// nobody reads: the writer blocks on it for good) costs exported events,
// counted, and nothing else: every event still reaches a GetEvents
// subscriber, and the agent still stops in bounded time.
func TestExportSlowDiskDoesNotBlock(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "stuck")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// unblock the stuck writer, which then fails and ends
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			time.Sleep(100 * time.Millisecond)
			f.Close()
		}
	})
	work := t.TempDir()
	a, stop := startAgent(t, func(c *config.Config) {
		c.ExportFilename = fifo
		c.ExportQueue = 16
	})
	sub := a.Bus().Subscribe(100000, func(ev *api.GetEventsResponse) bool {
		if e := ev.GetProcessExec(); e != nil {
			return e.GetProcess().GetCwd() == work
		}
		return ev.GetProcessExit().GetProcess().GetCwd() == work
	})
	const n = 300
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do /bin/true $i; i=$((i+1)); done`, n))
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("workload: %v %s", err, out)
	}
	got := 0
	timeout := time.After(30 * time.Second)
	// the shell's exec and exit, and each true's
	for got < 2*(n+1) {
		select {
		case <-sub.C():
			got++
		case <-timeout:
			t.Fatalf("the subscriber got %d of %d events", got, 2*(n+1))
		}
	}
	l := a.Status().GetLosses()
	// all but what the queue (16) and the writer's stuck batch hold: a batch
	// is at most 64 KiB, and an exec or exit line is over 1 KiB
	if l.GetExportQueueOverflow() < 2*n-16-64 {
		t.Errorf("export queue overflow %d, want about the workload's %d events", l.GetExportQueueOverflow(), 2*n)
	}
	if l.GetSubscriberDrops() != 0 {
		t.Errorf("GetEvents subscribers lost %d events: the exporter's losses are counted there", l.GetSubscriberDrops())
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("stopping with a stuck export file took %v", d)
	}
}

// waitExport reads the export until done says the lines are there, failing
// (readExport) on any line that is not whole JSON.
func waitExport(t *testing.T, dir string, what string, done func([]line) bool) []line {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines, _, _ := readExport(t, dir, true)
		if done(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s, no %s in the export (%d lines)", what, len(lines))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestExportFullDisk fills the export file's file system (a 256 KiB tmpfs)
// until writes fail with ENOSPC, frees space and exports more: every line
// must be whole JSON, the file must end with a newline, the failures must
// be counted, and the events after the space came back must all be there.
func TestExportFullDisk(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Fatalf("mounting a 256 KiB tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	// most of the space goes to a file removed later: the space that comes back
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 200<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("full-%d", time.Now().UnixNano())
	a, _ := startAgent(t, func(c *config.Config) {
		c.ExportFilename = filepath.Join(dir, "tetragon.log")
		c.ExportAllow = fmt.Sprintf(`{"arguments_regex":[%q]}`, marker)
	})
	deadline := time.Now().Add(60 * time.Second)
	for a.Status().GetLosses().GetExportWriteErrors() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("after 60s the 256 KiB file system is still not full")
		}
		workload(t, marker+"-fill", 20)
		time.Sleep(100 * time.Millisecond)
	}
	// the exporter may still be writing (failing) the last events: wait
	// until it has stopped, so the space freed is the after events'
	for errs := uint64(0); ; time.Sleep(500 * time.Millisecond) {
		e := a.Status().GetLosses().GetExportWriteErrors()
		if e == errs {
			break
		}
		errs = e
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	const n = 5
	after := marker + "-after"
	workload(t, after, n)
	lines := waitExport(t, dir, "exits of the processes run after the space came back", func(lines []line) bool {
		_, exits := marked(lines, after)
		return len(exits) >= n+1
	})
	execs, exits := marked(lines, after)
	if len(execs) != n+1 || len(exits) != n+1 {
		t.Errorf("after the space came back: %d execs and %d exits, want %d each", len(execs), len(exits), n+1)
	}
	data, err := os.ReadFile(filepath.Join(dir, "tetragon.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		t.Errorf("the export file does not end with a newline: ...%q", data[max(len(data)-80, 0):])
	}
	if e := a.Status().GetLosses().GetExportWriteErrors(); e == 0 {
		t.Errorf("write errors counted: %d", e)
	}
}

// TestExportFileMovedOrDeleted: when someone renames the export file, and
// later deletes it, the agent goes on writing in a new file at the path,
// not in the moved or unlinked one.
func TestExportFileMovedOrDeleted(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "tetragon.log")
	marker := fmt.Sprintf("moved-%d", time.Now().UnixNano())
	a, _ := startAgent(t, func(c *config.Config) {
		c.ExportFilename = name
		c.ExportAllow = fmt.Sprintf(`{"arguments_regex":[%q]}`, marker)
	})
	step := func(m string) {
		t.Helper()
		workload(t, m, 3)
		waitExport(t, dir, m, func(lines []line) bool {
			_, exits := marked(lines, m)
			return len(exits) >= 4
		})
	}
	step(marker + "-first")
	if err := os.Rename(name, name+".moved"); err != nil {
		t.Fatal(err)
	}
	// the path is checked at most once a second
	time.Sleep(1200 * time.Millisecond)
	step(marker + "-second")
	moved, err := os.ReadFile(name + ".moved")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("no new export file after the rename: %v", err)
	}
	if !strings.Contains(string(moved), marker+"-first") || strings.Contains(string(moved), marker+"-second") {
		t.Errorf("the moved file has the events of after the move")
	}
	if !strings.Contains(string(cur), marker+"-second") || strings.Contains(string(cur), marker+"-first") {
		t.Errorf("the new file at the path lacks the events of after the move")
	}

	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	step(marker + "-third")
	cur, err = os.ReadFile(name)
	if err != nil {
		t.Fatalf("no new export file after the delete: %v", err)
	}
	if !strings.Contains(string(cur), marker+"-third") || strings.Contains(string(cur), marker+"-second") {
		t.Errorf("the new file at the path lacks the events of after the delete")
	}
	if l := a.Status().GetLosses(); l.GetExportWriteErrors() != 0 {
		t.Errorf("export losses: %v", l)
	}
}
