package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/metrics"
)

// binaries are the real agent and client the events benchmarks run.
type binaries struct{ tetragon, tetra string }

// buildBinaries compiles cmd/tetragon and cmd/tetra of the module the
// benchmark runs in, so the numbers are those of the shipped binaries,
// not of an in-process imitation.
func buildBinaries(dir string) (binaries, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return binaries{}, fmt.Errorf("finding the module (go env GOMOD): %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if root == "." || root == "" || strings.HasSuffix(strings.TrimSpace(string(out)), os.DevNull) {
		return binaries{}, errors.New("not inside the tetragon module: run from the repository, or pass -tetragon and -tetra")
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/tetragon", "./cmd/tetra")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("building tetragon and tetra: %w\n%s", err, out)
	}
	return binaries{tetragon: filepath.Join(dir, "tetragon"), tetra: filepath.Join(dir, "tetra")}, nil
}

// agentProc is a running tetragon process.
type agentProc struct {
	cmd     *exec.Cmd
	sock    string
	metrics string
	log     string
	bins    binaries
	exited  chan struct{}
	waitErr error
}

// freeLoopbackPort picks a port for the agent's metrics endpoint. The agent
// refuses a taken port at startup, so a race here shows as an error, not
// as wrong numbers.
func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startAgent runs the agent on its own socket, metrics port and policy
// directory, pinning nothing and reading no host configuration, so it
// cannot disturb (or be disturbed by) an agent already on the host; it
// returns once `tetra status` reports it ready (its policies attached).
func startAgent(bins binaries, dir, policyDir, profile string, extra ...string) (*agentProc, error) {
	addr, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	empty := filepath.Join(dir, "tetragon.yaml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return nil, fmt.Errorf("writing an empty agent config: %w", err)
	}
	a := &agentProc{
		sock: filepath.Join(dir, "tetragon.sock"), metrics: addr, log: filepath.Join(dir, "agent.log"),
		bins: bins, exited: make(chan struct{}),
	}
	args := []string{
		"--server-address", a.sock, "--metrics-server", addr, "--bpf-dir", "", "--docker-socket", "",
		"--tracing-policy-dir", policyDir, "--config-file", empty, "--config-dir", filepath.Join(dir, "conf.d"),
	}
	if profile != "" {
		args = append(args, "--cpu-profile", filepath.Join(profile, "agent.pprof"))
	}
	args = append(args, extra...)
	logf, err := os.Create(a.log)
	if err != nil {
		return nil, fmt.Errorf("creating the agent log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	a.cmd = exec.Command(bins.tetragon, args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bins.tetragon, err)
	}
	go func() { a.waitErr = a.cmd.Wait(); close(a.exited) }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if exec.Command(bins.tetra, "--server-address", a.sock, "status").Run() == nil {
			return a, nil
		}
		select {
		case <-a.exited:
			return nil, fmt.Errorf("the agent exited while starting (%v):\n%s", a.waitErr, tail(a.log))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.stop()
			return nil, fmt.Errorf("the agent was not ready after 90s:\n%s", tail(a.log))
		}
	}
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

// stop asks the agent to exit (SIGINT, as Ctrl-C), and kills it if it has
// not after 15s.
func (a *agentProc) stop() error {
	return stopProcess(a.cmd.Process, a.exited, func() error { return a.waitErr }, 15*time.Second)
}

func stopProcess(p *os.Process, exited <-chan struct{}, waitErr func() error, grace time.Duration) error {
	if err := p.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("interrupting pid %d: %w", p.Pid, err)
	}
	select {
	case <-exited:
		return waitErr()
	case <-time.After(grace):
		p.Kill()
		<-exited
		return fmt.Errorf("pid %d did not stop within %v of SIGINT: killed", p.Pid, grace)
	}
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// losses are the agent's loss counters, from its metrics.
type losses struct {
	// kernel: records the ring buffer had no room for (exec/exit/fork and
	// hook records)
	kernel float64
	// queue: records the decode queue had no room for
	queue float64
	// subscriber: events a slow getevents client lost
	subscriber float64
	decode     float64
	// export: events the export file lost (its queue full, or not
	// written)
	export float64
}

func (l losses) total() float64 { return l.kernel + l.queue + l.subscriber + l.decode + l.export }

func (l losses) sub(o losses) losses {
	return losses{l.kernel - o.kernel, l.queue - o.queue, l.subscriber - o.subscriber, l.decode - o.decode, l.export - o.export}
}

func (l losses) String() string {
	return fmt.Sprintf("kernel ringbuf %.0f, decode queue %.0f, subscriber %.0f, decode errors %.0f, export %.0f", l.kernel, l.queue, l.subscriber, l.decode, l.export)
}

func (a *agentProc) losses() (losses, error) {
	f, err := metrics.Scrape(a.metrics)
	if err != nil {
		return losses{}, fmt.Errorf("reading the agent's metrics: %w", err)
	}
	v := func(name string) float64 { n, _ := f.Value(name); return n }
	return losses{
		kernel:     v("tetragon_observer_ringbuf_events_lost_total") + v("tetragon_policy_hook_ringbuf_lost_total"),
		queue:      v("tetragon_observer_ringbuf_queue_events_lost_total"),
		subscriber: v("tetragon_notify_overflowed_events_total"),
		decode:     v("tetragon_decode_errors_total"),
		export:     v("tetragon_export_queue_events_dropped_total") + v("tetragon_export_errors_total"),
	}, nil
}

// statusLosses is what `tetra status -o json` reports, the other place
// the agent shows its losses: a cross-check of the metrics.
func (a *agentProc) statusLosses() (string, error) {
	out, err := exec.Command(a.bins.tetra, "--server-address", a.sock, "status", "-o", "json").Output()
	if err != nil {
		return "", fmt.Errorf("tetra status: %w", err)
	}
	i := bytes.Index(out, []byte(`"losses"`))
	if i < 0 {
		return "", fmt.Errorf("tetra status: no losses in %s", out)
	}
	j := bytes.IndexByte(out[i:], '}')
	return strings.Join(strings.Fields(string(out[i:i+j+1])), " "), nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports (the kernel converts to it for user space).
const clockTicks = 100

// cpuTime is a process's user plus system CPU time, all threads, from
// /proc/<pid>/stat (fields 14 and 15).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (time.Duration, error) {
	// the command name (field 2) may hold spaces and parentheses: the
	// fields are counted from its closing parenthesis
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat line %q", b)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("malformed stat line %q: %w", b, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// rss reads VmRSS from /proc/<pid>/status, in bytes.
func rss(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading RSS: %w", err)
	}
	return parseStatusKB(b, "VmRSS")
}

// rssParts says what an RSS is made of: the process's own memory (heap,
// stacks: RssAnon), the pages of its binary and other files it maps
// (RssFile: shared, clean, given back under memory pressure without I/O)
// and shared memory (RssShmem). A BPF map a process mmaps (the ring
// buffer) is counted in RssFile.
func rssParts(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", fmt.Errorf("reading RSS: %w", err)
	}
	var parts []string
	for _, key := range []string{"RssAnon", "RssFile", "RssShmem"} {
		n, err := parseStatusKB(b, key)
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", key, float64(n)/(1<<20)))
	}
	return strings.Join(parts, ", "), nil
}

func parseStatusKB(b []byte, key string) (uint64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed %s line %q", key, line)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed %s line %q: %w", key, line, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("no %s in /proc status", key)
}

// rssSampler keeps the largest VmRSS of a process seen since the last reset.
type rssSampler struct {
	max atomic.Uint64
}

func (s *rssSampler) run(ctx context.Context, pid int) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if n, err := rss(pid); err == nil {
			for old := s.max.Load(); n > old && !s.max.CompareAndSwap(old, n); old = s.max.Load() {
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reset returns the maximum so far and starts over.
func (s *rssSampler) reset() uint64 { return s.max.Swap(0) }

// consumer is a real `tetra getevents -o json` whose output the benchmark
// reads line by line, as any program downstream of it would.
type consumer struct {
	cmd     *exec.Cmd
	out     io.ReadCloser
	exited  chan struct{}
	waitErr error
	done    chan struct{}
	readErr error

	// marker identifies the read benchmark's events; reads counts their
	// lines and lastRead is when the last arrived (unix ns)
	marker   []byte
	reads    atomic.Uint64
	lastRead atomic.Int64
	// lines counts every line
	lines atomic.Uint64

	mu sync.Mutex
	// other gets every line that is not the read benchmark's
	other func([]byte)
}

func startConsumer(a *agentProc, marker, profile string) (*consumer, error) {
	c := &consumer{marker: []byte(marker), exited: make(chan struct{}), done: make(chan struct{})}
	args := []string{"--server-address", a.sock, "getevents", "-o", "json"}
	if profile != "" {
		args = append(args, "--cpu-profile", filepath.Join(profile, "tetra.pprof"))
	}
	c.cmd = exec.Command(a.bins.tetra, args...)
	var err error
	if c.out, err = c.cmd.StdoutPipe(); err != nil {
		return nil, fmt.Errorf("tetra getevents: %w", err)
	}
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting tetra getevents: %w", err)
	}
	go func() { c.readErr = c.read(); close(c.done) }()
	go func() { <-c.done; c.waitErr = c.cmd.Wait(); close(c.exited) }()
	// GetEvents subscribes when the stream opens; an event raised before
	// that is not delivered, so wait until the agent counts the client.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(a.bins.tetra, "--server-address", a.sock, "status", "-o", "json").Output()
		if err == nil && bytes.Contains(out, []byte(`"subscribers": 1`)) {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, errors.New("tetra getevents did not subscribe within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *consumer) read() error {
	sc := bufio.NewScanner(c.out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		c.lines.Add(1)
		if bytes.Contains(line, c.marker) {
			c.reads.Add(1)
			c.lastRead.Store(time.Now().UnixNano())
			continue
		}
		c.mu.Lock()
		if c.other != nil {
			c.other(line)
		}
		c.mu.Unlock()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading tetra getevents' output: %w", err)
	}
	return nil
}

// onOther routes the lines that are not the read benchmark's to f (nil:
// drop them).
func (c *consumer) onOther(f func([]byte)) {
	c.mu.Lock()
	c.other = f
	c.mu.Unlock()
}

// pid is tetra's, 0 for the export file (no process of its own).
func (c *consumer) pid() int {
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// startExportReader reads the agent's export file, a FIFO at path, as a
// log shipper would.
func startExportReader(path, marker string) (*consumer, error) {
	// read and write: opening does not wait for the agent, and the FIFO
	// never reports an end while the agent reopens it
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the export FIFO: %w", err)
	}
	c := &consumer{marker: []byte(marker), out: f, exited: make(chan struct{}), done: make(chan struct{})}
	go func() { c.readErr = c.read(); close(c.done) }()
	return c, nil
}

// stop ends tetra as Ctrl-C does, which also writes its CPU profile.
func (c *consumer) stop() error {
	if c.cmd == nil {
		err := c.out.Close()
		<-c.done
		return err
	}
	err := stopProcess(c.cmd.Process, c.exited, func() error { return c.waitErr }, 10*time.Second)
	if c.readErr != nil {
		return c.readErr
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
		return nil // it had stopped reading by itself, no worse
	}
	return err
}
