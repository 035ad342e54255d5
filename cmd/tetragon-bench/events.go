package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readPolicyName names the read benchmark's policy; its events carry it.
const readPolicyName = "tetragon-bench-read"

// readPolicy reports every read of a file under dir: one event per read.
func readPolicy(dir string) []byte {
	return fmt.Appendf(nil, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %q
spec:
  kprobes:
  - call: "security_file_permission"
    syscall: false
    args:
    - index: 0
      type: "file"
    - index: 1
      type: "int"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Prefix"
        values:
        - %q
      - index: 1
        operator: "Mask"
        values:
        - "4"
`, readPolicyName, dir+"/")
}

// eventsOptions configure parts b, c and e.
type eventsOptions struct {
	bins binaries
	// rates are the read rates offered, events/s; 0 is as fast as one
	// thread can read
	rates   []int
	step    time.Duration
	execs   int
	workers int
	settle  time.Duration
	profile string
}

// eventsBenchmarks runs one agent and one `tetra getevents -o json` for
// parts b (matching reads), c (exec storm) and e (RSS idle and under load).
func eventsBenchmarks(o eventsOptions) ([]result, error) {
	dir, err := os.MkdirTemp("", "tetragon-bench-events-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "watched")
	policies := filepath.Join(dir, "policies")
	for _, d := range []string{data, policies} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "file"), []byte("x"), 0o644); err != nil {
		return nil, fmt.Errorf("writing the watched file: %w", err)
	}
	if err := os.WriteFile(filepath.Join(policies, "read.yaml"), readPolicy(data), 0o644); err != nil {
		return nil, fmt.Errorf("writing the read policy: %w", err)
	}
	if o.bins.tetragon == "" {
		fmt.Println("building tetragon and tetra ...")
		if o.bins, err = buildBinaries(dir); err != nil {
			return nil, err
		}
	}
	// c's floor: the same storm with no agent running, so that its exec/s
	// is read against what this machine does without one
	bin, err := stormBinary(dir)
	if err != nil {
		return nil, err
	}
	floor, err := runStorm(bin, o.execs, o.workers)
	if err != nil {
		return nil, err
	}
	fmt.Printf("(c) floor: the exec storm (%d processes, %d workers) with no agent: %.0f exec/s\n", o.execs, o.workers, float64(o.execs)/floor.Seconds())

	fmt.Printf("starting %s (its own socket, metrics on loopback, policy: every read under %s)\n", o.bins.tetragon, data)
	a, err := startAgent(o.bins, dir, policies, o.profile)
	if err != nil {
		return nil, err
	}
	defer a.stop()

	var results []result
	// e, idle: once started, the agent hands the BTF it parsed back to the
	// OS; give it the time the measurement gave it.
	time.Sleep(o.settle)
	idle, err := rss(a.pid())
	if err != nil {
		return nil, err
	}
	parts, err := rssParts(a.pid())
	if err != nil {
		return nil, err
	}
	fmt.Printf("(e) idle VmRSS %.1f MiB (%s), %v after ready\n", mib(idle), parts, o.settle)
	results = append(results, result{"e", "agent VmRSS idle", fmt.Sprintf("%.1f MiB", mib(idle)), "< 50 MiB", metStr(mib(idle) < 50)})

	marker := `"policy_name":"` + readPolicyName + `"`
	c, err := startConsumer(a, marker, o.profile)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sampler rssSampler
	go sampler.run(ctx, a.pid())

	fmt.Printf("\n(b) matching reads delivered to tetra getevents -o json\n")
	b, err := readThroughput(a, c, filepath.Join(data, "file"), o.rates, o.step, "tetra getevents -o json")
	if err != nil {
		return nil, err
	}
	readRSS := sampler.reset()
	b[0].value += fmt.Sprintf("; agent VmRSS max %.1f MiB", mib(readRSS))
	results = append(results, b...)

	storm, err := execStorm(a, c, bin, o.execs, o.workers, floor)
	if err != nil {
		return nil, err
	}
	execRSS := sampler.reset()
	storm[0].value += fmt.Sprintf("; agent VmRSS max %.1f MiB", mib(execRSS))
	results = append(results, storm...)
	fmt.Printf("(e) max VmRSS: %.1f MiB during the read runs, %.1f MiB during the exec storm\n", mib(readRSS), mib(execRSS))

	if st, err := a.statusLosses(); err == nil {
		fmt.Printf("tetra status at the end: %s\n", st)
	} else {
		fmt.Printf("tetra status at the end: %v\n", err)
	}
	if err := c.stop(); err != nil {
		return nil, fmt.Errorf("stopping tetra getevents: %w", err)
	}
	cancel()
	if err := a.stop(); err != nil {
		return nil, fmt.Errorf("stopping the agent: %w", err)
	}
	if o.profile != "" {
		fmt.Printf("CPU profiles: %s/agent.pprof, %s/tetra.pprof (go tool pprof -top %s %s/agent.pprof)\n", o.profile, o.profile, o.bins.tetragon, o.profile)
	}

	// the export path: another agent, writing every event to a FIFO the
	// benchmark reads, and no GetEvents client
	fifo := filepath.Join(dir, "export.jsonl")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("creating the export FIFO: %w", err)
	}
	exportDir := filepath.Join(dir, "export-agent")
	if err := os.Mkdir(exportDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", exportDir, err)
	}
	exportProfile := ""
	if o.profile != "" {
		exportProfile = filepath.Join(o.profile, "export")
		if err := os.MkdirAll(exportProfile, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", exportProfile, err)
		}
	}
	x, err := startExportReader(fifo, marker)
	if err != nil {
		return nil, err
	}
	defer x.stop()
	fmt.Printf("\nstarting %s with --export-filename %s (a FIFO the benchmark reads) and no GetEvents client\n", o.bins.tetragon, fifo)
	// no rotation: the FIFO must stay the file written
	ea, err := startAgent(o.bins, exportDir, policies, exportProfile,
		"--export-filename", fifo, "--export-file-max-size-mb", "1000000")
	if err != nil {
		return nil, err
	}
	defer ea.stop()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	var sampler2 rssSampler
	go sampler2.run(ctx2, ea.pid())
	fmt.Printf("\n(b) matching reads written to the export file\n")
	xb, err := readThroughput(ea, x, filepath.Join(data, "file"), o.rates, o.step, "--export-filename")
	if err != nil {
		return nil, err
	}
	exportRSS := sampler2.reset()
	xb[0].value += fmt.Sprintf("; agent VmRSS max %.1f MiB", mib(exportRSS))
	results = append(results, xb...)
	if err := ea.stop(); err != nil {
		return nil, fmt.Errorf("stopping the exporting agent: %w", err)
	}
	if err := x.stop(); err != nil {
		return nil, fmt.Errorf("reading the export FIFO: %w", err)
	}
	return results, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func metStr(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// cpuOf is the CPU time of the agent, of tetra, and of this process
// (the workload and the line counting).
type cpuOf struct{ agent, tetra, bench time.Duration }

func readCPU(a *agentProc, c *consumer) (cpuOf, error) {
	var s cpuOf
	var err1, err2, err3 error
	s.agent, err1 = cpuTime(a.pid())
	if c.pid() != 0 {
		s.tetra, err2 = cpuTime(c.pid())
	}
	s.bench, err3 = cpuTime(os.Getpid())
	if err := errors.Join(err1, err2, err3); err != nil {
		return s, err
	}
	return s, nil
}

// readLoop reads one byte of path rate times a second (0: as fast as it
// can) for d, each read one matching event; it returns the reads done.
// One OS thread, as one busy process would.
func readLoop(path string, rate int, d time.Duration) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	// batches keep the clock reads and sleeps off the per-read cost
	const batch = 64
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		for range batch {
			if _, err := unix.Pread(fd, buf, 0); err != nil {
				return n, fmt.Errorf("reading %s: %w", path, err)
			}
		}
		n += batch
		if rate > 0 {
			due := start.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
	return n, nil
}

// readThroughput is part b: for each offered rate, reads of a watched
// file for step, then counts what tetra delivered, what the agent lost
// and the CPU the agent and tetra spent per event.
func readThroughput(a *agentProc, c *consumer, path string, rates []int, step time.Duration, to string) ([]result, error) {
	fmt.Printf("  one event per read of %s, delivered to %s, %v per rate\n", path, to, step)
	fmt.Printf("  CPU/event is (agent + tetra CPU time) ÷ every line delivered meanwhile (the host's other events included)\n")
	fmt.Printf("  %-10s %9s %9s %11s %9s %9s %8s %8s %8s  %s\n", "offered/s", "reads", "delivered", "events/s", "missing", "µs CPU/ev", "agent", "tetra", "bench", "losses (agent counters)")
	best, bestRate, bestCPU := 0.0, "", ""
	var maxRun struct {
		rate float64
		lost float64
		cpu  float64
	}
	for _, rate := range rates {
		l0, err := a.losses()
		if err != nil {
			return nil, err
		}
		cpu0, err := readCPU(a, c)
		if err != nil {
			return nil, err
		}
		base, lines0 := c.reads.Load(), c.lines.Load()
		start := time.Now()
		n, err := readLoop(path, rate, step)
		if err != nil {
			return nil, err
		}
		// drained: everything arrived, or nothing more for 2s
		last, lastChange := c.reads.Load(), time.Now()
		for c.reads.Load()-base < uint64(n) && time.Since(lastChange) < 2*time.Second {
			time.Sleep(20 * time.Millisecond)
			if now := c.reads.Load(); now != last {
				last, lastChange = now, time.Now()
			}
		}
		delivered := c.reads.Load() - base
		end := time.Unix(0, c.lastRead.Load())
		if end.Before(start) {
			end = time.Now()
		}
		cpu1, err := readCPU(a, c)
		if err != nil {
			return nil, err
		}
		l1, err := a.losses()
		if err != nil {
			return nil, err
		}
		lost := l1.sub(l0)
		missing := int64(n) - int64(delivered)
		perSec := float64(delivered) / end.Sub(start).Seconds()
		agentCPU, tetraCPU := cpu1.agent-cpu0.agent, cpu1.tetra-cpu0.tetra
		perEvent, perAgent, perTetra := 0.0, 0.0, 0.0
		if lines := c.lines.Load() - lines0; lines > 0 {
			perAgent = float64(agentCPU.Microseconds()) / float64(lines)
			perTetra = float64(tetraCPU.Microseconds()) / float64(lines)
			perEvent = perAgent + perTetra
		}
		offered := "max"
		if rate > 0 {
			offered = strconv.Itoa(rate)
		}
		fmt.Printf("  %-10s %9d %9d %11.0f %9d %9.2f %8s %8s %8s  %v\n", offered, n, delivered, perSec, missing, perEvent,
			agentCPU.Round(10*time.Millisecond), tetraCPU.Round(10*time.Millisecond),
			(cpu1.bench - cpu0.bench).Round(10*time.Millisecond), lost)
		if missing == 0 && lost.total() == 0 && perSec > best {
			best, bestRate = perSec, offered
			bestCPU = fmt.Sprintf("%.1f µs CPU/event (agent %.1f, tetra %.1f)", perEvent, perAgent, perTetra)
		}
		if rate == 0 {
			maxRun.rate, maxRun.lost, maxRun.cpu = perSec, float64(missing), perEvent
		}
		// let tetra's backlog, if any, go before the next rate
		time.Sleep(500 * time.Millisecond)
	}
	value := "none of the rates offered"
	if bestRate != "" {
		value = fmt.Sprintf("%.0f/s (offered %s/s), %s", best, bestRate, bestCPU)
	}
	res := []result{{"b", "matching events/s to " + to + " with zero loss (highest offered rate)", value, ">= 200,000/s, 0 lost", metStr(best >= 200_000)}}
	if maxRun.rate > 0 {
		res = append(res, result{"b", "unthrottled reads to " + to + ": delivered/s, missing, CPU/event", fmt.Sprintf("%.0f/s, %.0f missing, %.2f µs (agent+tetra)", maxRun.rate, maxRun.lost, maxRun.cpu), "", "—"})
	}
	return res, nil
}

// execEvent is what the exec storm reads of a line.
type execEvent struct {
	Exec *struct {
		Process struct {
			ExecID string `json:"exec_id"`
			Binary string `json:"binary"`
		} `json:"process"`
	} `json:"process_exec"`
	Exit *struct {
		Process struct {
			ExecID string `json:"exec_id"`
			Binary string `json:"binary"`
		} `json:"process"`
	} `json:"process_exit"`
}

// pairs matches exec and exit events of one binary by exec id.
type pairs struct {
	mu     sync.Mutex
	binary string
	// needle: the binary as it shows in a line, to skip the others cheaply
	needle []byte
	seen   map[string]uint8
	last   time.Time
}

const (
	sawExec = 1 << iota
	sawExit
)

func (p *pairs) line(b []byte) {
	if !bytes.Contains(b, p.needle) {
		return
	}
	var ev execEvent
	if json.Unmarshal(b, &ev) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case ev.Exec != nil && ev.Exec.Process.Binary == p.binary:
		p.seen[ev.Exec.Process.ExecID] |= sawExec
	case ev.Exit != nil && ev.Exit.Process.Binary == p.binary:
		p.seen[ev.Exit.Process.ExecID] |= sawExit
	default:
		return
	}
	p.last = time.Now()
}

// count is the processes seen with both events, and with only one.
func (p *pairs) count() (both, execOnly, exitOnly int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.seen {
		switch s {
		case sawExec | sawExit:
			both++
		case sawExec:
			execOnly++
		case sawExit:
			exitOnly++
		}
	}
	return
}

// tinyELF is a complete x86-64 program that exits 0: an ELF header, one
// loadable segment and three instructions (xor edi,edi; mov eax,60
// (exit); syscall). The exec storm measures how many exec/exit pairs the
// agent delivers, so its processes should cost the machine as little as a
// process can: a dynamically linked true spends most of its life in the
// loader.
func tinyELF() []byte {
	code := []byte{0x31, 0xff, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05}
	const base, hdr = 0x400000, 64 + 56
	size := uint64(hdr + len(code))
	b := make([]byte, 0, size)
	le := binary.LittleEndian
	b = append(b, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	b = le.AppendUint16(b, 2)    // ET_EXEC
	b = le.AppendUint16(b, 0x3e) // EM_X86_64
	b = le.AppendUint32(b, 1)
	b = le.AppendUint64(b, base+hdr) // entry
	b = le.AppendUint64(b, 64)       // program headers
	b = le.AppendUint64(b, 0)        // no sections
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, 64)
	b = le.AppendUint16(b, 56)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 1) // PT_LOAD
	b = le.AppendUint32(b, 5) // R+X
	b = le.AppendUint64(b, 0)
	b = le.AppendUint64(b, base)
	b = le.AppendUint64(b, base)
	b = le.AppendUint64(b, size)
	b = le.AppendUint64(b, size)
	b = le.AppendUint64(b, 0x1000)
	return append(b, code...)
}

// stormBinary writes the storm's program under a name of its own (its
// events are the storm's): tinyELF on x86-64, a copy of true elsewhere.
func stormBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "bench-true")
	if runtime.GOARCH == "amd64" {
		if err := os.WriteFile(bin, tinyELF(), 0o755); err != nil {
			return "", fmt.Errorf("writing the storm's program: %w", err)
		}
		return bin, nil
	}
	src, err := exec.LookPath("true")
	if err != nil {
		return "", fmt.Errorf("finding true: %w", err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("copying true: %w", err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		return "", fmt.Errorf("copying true: %w", err)
	}
	return bin, nil
}

// spawn runs bin count times, one after the other, and checks each exits 0.
func spawn(bin string, count int) error {
	argv := []string{bin}
	for range count {
		pid, err := syscall.ForkExec(bin, argv, &syscall.ProcAttr{})
		if err != nil {
			return fmt.Errorf("starting %s: %w", bin, err)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			return fmt.Errorf("waiting for %s: %w", bin, err)
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			return fmt.Errorf("%s ended with status %v", bin, ws)
		}
	}
	return nil
}

// runStorm runs n processes of bin from workers goroutines in parallel
// (fork and exec, then wait, each) and returns how long they took.
func runStorm(bin string, n, workers int) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		count := n / workers
		if w < n%workers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = spawn(bin, count)
		}()
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// execStorm is part c: n processes of bin (stormBinary), run by runStorm;
// every exec and exit must reach tetra. floor is how long the same storm
// took with no agent.
func execStorm(a *agentProc, c *consumer, bin string, n, workers int, floor time.Duration) ([]result, error) {
	p := &pairs{binary: bin, needle: []byte(`"binary":"` + bin + `"`), seen: make(map[string]uint8, n)}
	c.onOther(p.line)
	defer c.onOther(nil)
	fmt.Printf("\n(c) exec storm: %d processes of %s from %d workers\n", n, bin, workers)
	l0, err := a.losses()
	if err != nil {
		return nil, err
	}
	cpu0, err := readCPU(a, c)
	if err != nil {
		return nil, err
	}
	lines0 := c.lines.Load()
	start := time.Now()
	took, err := runStorm(bin, n, workers)
	if err != nil {
		return nil, err
	}
	rate, floorRate := float64(n)/took.Seconds(), float64(n)/floor.Seconds()
	fmt.Printf("  %d processes ran in %v: %.0f exec/s (%.0f with no agent: ÷ %.2f)\n", n, took.Round(time.Millisecond), rate, floorRate, rate/floorRate)
	deadline := time.Now().Add(30 * time.Second)
	for {
		both, _, _ := p.count()
		if both >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	both, execOnly, exitOnly := p.count()
	p.mu.Lock()
	delivered := p.last.Sub(start)
	p.mu.Unlock()
	cpu1, err := readCPU(a, c)
	if err != nil {
		return nil, err
	}
	l1, err := a.losses()
	if err != nil {
		return nil, err
	}
	missing := n - both
	perEvent := 0.0
	// every line: the storm's shells and the host's other processes cost too
	if lines := c.lines.Load() - lines0; lines > 0 {
		perEvent = float64(((cpu1.agent - cpu0.agent) + (cpu1.tetra - cpu0.tetra)).Microseconds()) / float64(lines)
	}
	fmt.Printf("  pairs delivered: %d of %d (exec only %d, exit only %d), the last %v after the start; missing pairs %d\n",
		both, n, execOnly, exitOnly, delivered.Round(time.Millisecond), missing)
	fmt.Printf("  CPU: agent %v, tetra %v (%.1f µs per line tetra wrote); losses: %v\n",
		(cpu1.agent - cpu0.agent).Round(10*time.Millisecond), (cpu1.tetra - cpu0.tetra).Round(10*time.Millisecond), perEvent, l1.sub(l0))
	return []result{{"c", fmt.Sprintf("exec storm, %d processes: exec/s, missing pairs", n),
		fmt.Sprintf("%.0f exec/s (no agent: %.0f, ÷ %.2f), %d missing, %.1f µs CPU/event", rate, floorRate, rate/floorRate, missing, perEvent), "every exec/exit pair", metStr(missing == 0 && execOnly+exitOnly == 0)}}, nil
}
