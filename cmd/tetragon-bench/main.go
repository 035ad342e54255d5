// Command tetragon-bench measures the agent's cost side by side on this
// machine and prints ratios (see docs/performance.md).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// result is one row of the final table.
type result struct {
	part  string // the letter: a..e
	what  string
	value string
	goal  string
	met   string // yes, NO, or — where there is no goal
}

// partNames are the benchmarks -only selects from, in the order they run.
func partNames() []string { return []string{"syscall", "calls", "events", "reload"} }

func main() {
	rounds := flag.Int("rounds", 7, "interleaved rounds per mode")
	window := flag.Duration("window", 500*time.Millisecond, "measuring window per round")
	policy := flag.String("policy", "policies/file-monitoring.yaml,policies/enforcement.yaml", "the policy files the syscall benchmark loads, comma-separated (default: the two shipped ones)")
	edits := flag.Int("edits", 100, "policy file edits the reload benchmark times")
	only := flag.String("only", "", "run only these parts, comma-separated: syscall (a), calls (a, per call kind), events (b, c, e: a real agent and tetra), reload (d)")
	calls := flag.Int("calls", 200000, "calls: calls of each kind per round and mode")
	rates := flag.String("rates", "10000,25000,50000,100000,200000,0", "events: read rates offered to the agent, events/s; 0 is as fast as one thread reads")
	step := flag.Duration("step", 5*time.Second, "events: how long each read rate runs")
	execs := flag.Int("execs", 10000, "events: processes in the exec storm")
	workers := flag.Int("exec-workers", 2, "events: workers starting the exec storm's processes in parallel (fork, exec, wait)")
	settle := flag.Duration("settle", 8*time.Second, "events: wait after the agent is ready before reading its idle RSS")
	tetragonBin := flag.String("tetragon", "", "events: the agent binary (default: build ./cmd/tetragon)")
	tetraBin := flag.String("tetra", "", "events: the tetra binary (default: build ./cmd/tetra)")
	profile := flag.String("profile", "", "events: write CPU profiles of the agent and tetra to this directory")
	loopChild := flag.String("loop-child", "", "internal: for each line read, run the syscall benchmark's open/read/close loop on this file for -window and print its ops/s")
	jit := flag.Uint("jit-dump", 0, "write the JIT image of the loaded BPF program with this id into the current directory, a file per function named by its kernel symbol, for objdump (docs/performance.md), and exit")
	flag.Parse()
	if *jit != 0 {
		if err := dumpJIT(ebpf.ProgramID(*jit), "."); err != nil {
			fmt.Fprintln(os.Stderr, "tetragon-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *loopChild != "" {
		if err := serveLoops(*loopChild, *window); err != nil {
			fmt.Fprintln(os.Stderr, "tetragon-bench:", err)
			os.Exit(1)
		}
		return
	}
	err := func() error {
		if os.Geteuid() != 0 {
			return errors.New("run as root: the benchmark loads BPF programs")
		}
		run := map[string]bool{}
		for _, p := range strings.Split(*only, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if !slices.Contains(partNames(), p) {
				return fmt.Errorf("-only %q: want some of %s", p, strings.Join(partNames(), ", "))
			}
			run[p] = true
		}
		if len(run) == 0 {
			for _, p := range partNames() {
				run[p] = true
			}
		}
		if (*tetragonBin == "") != (*tetraBin == "") {
			return errors.New("-tetragon and -tetra go together")
		}
		offered, err := parseRates(*rates)
		if err != nil {
			return err
		}
		var results []result
		if run["syscall"] {
			r, err := syscallOverhead(*rounds, *window, *policy)
			if err != nil {
				return fmt.Errorf("syscall overhead: %w", err)
			}
			results = append(results, r...)
		}
		if run["calls"] {
			r, err := callCosts(*rounds, *calls, *policy)
			if err != nil {
				return fmt.Errorf("per-call cost: %w", err)
			}
			results = append(results, r...)
		}
		if run["events"] {
			r, err := eventsBenchmarks(eventsOptions{
				bins:  binaries{tetragon: *tetragonBin, tetra: *tetraBin},
				rates: offered, step: *step, execs: *execs, workers: *workers, settle: *settle, profile: *profile,
			})
			if err != nil {
				return fmt.Errorf("events: %w", err)
			}
			results = append(results, r...)
		}
		if run["reload"] {
			r, err := reloadLatency(*edits)
			if err != nil {
				return fmt.Errorf("reload latency: %w", err)
			}
			results = append(results, r...)
		}
		printResults(results)
		return nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tetragon-bench:", err)
		os.Exit(1)
	}
}

func parseRates(s string) ([]int, error) {
	var rates []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-rates: %q is not a rate (events/s, 0 for as fast as possible)", f)
		}
		rates = append(rates, n)
	}
	return rates, nil
}

// printResults prints the final table, the part's letter first.
func printResults(results []result) {
	machine := "unknown kernel"
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		machine = unix.ByteSliceToString(u.Release[:])
	}
	fmt.Printf("\nresults (%d CPUs, Linux %s, %s)\n", runtime.NumCPU(), machine, runtime.Version())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "part\tmeasure\tvalue\tgoal\tmet")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.part, r.what, r.value, r.goal, r.met)
	}
	tw.Flush()
}

// looper is the process the syscall benchmark's loops run in, one for
// the whole benchmark. In the benchmark's own process, the policies a mode
// loaded (the manager, the kernel's BTF) would be on the loop's heap, and
// their garbage collection in its time. One process for every window, not
// one per window: a window then pays no process start (whose system calls
// bpf_stats would count against the window's operations), and every mode
// runs in the same memory layout.
type looper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startLooper(path string, d time.Duration) (*looper, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program: %w", err)
	}
	cmd := exec.Command(self, "-loop-child", path, "-window", d.String())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the loop's process: %w", err)
	}
	return &looper{cmd: cmd, in: in, out: bufio.NewScanner(out)}, nil
}

// window runs one window of the loop and returns its ops/s.
func (l *looper) window() (float64, error) {
	if _, err := fmt.Fprintln(l.in); err != nil {
		return 0, fmt.Errorf("the loop's process: %w", err)
	}
	if !l.out.Scan() {
		return 0, fmt.Errorf("the loop's process ended: %v", l.out.Err())
	}
	return strconv.ParseFloat(l.out.Text(), 64)
}

func (l *looper) Close() error {
	l.in.Close()
	return l.cmd.Wait()
}

// serveLoops is the looper's side: a window per line read.
func serveLoops(path string, d time.Duration) error {
	// one thread for every window: the loop's goroutine does not move
	// between threads (and their CPUs' caches) between windows
	runtime.LockOSThread()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		ops, err := loop(path, d)
		if err != nil {
			return err
		}
		fmt.Println(ops)
	}
	return in.Err()
}

// loop runs open/read/close of a non-sensitive file for d and returns ops/s.
func loop(path string, d time.Duration) (float64, error) {
	buf := make([]byte, 64)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		for i := 0; i < 256; i++ {
			f, err := os.Open(path)
			if err != nil {
				return 0, err
			}
			if _, err := f.Read(buf); err != nil {
				f.Close()
				return 0, err
			}
			f.Close()
		}
		n += 256
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// rawTracepointLinks counts the raw tracepoint links attached on the
// host, by tracepoint.
func rawTracepointLinks() (map[string]int, error) {
	counts := map[string]int{}
	var it link.Iterator
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.RawTracepointType {
			continue
		}
		if rt := info.RawTracepoint(); rt != nil {
			counts[rt.Name]++
		}
	}
	return counts, it.Err()
}

// rawTracepointLinkIDs lists the raw tracepoint links attached on the
// host.
func rawTracepointLinkIDs() (map[link.ID]ebpf.ProgramID, error) {
	ids := map[link.ID]ebpf.ProgramID{}
	var it link.Iterator
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.RawTracepointType {
			continue
		}
		ids[info.ID] = info.Program
	}
	return ids, it.Err()
}

// newPrograms opens the programs of the raw tracepoint links attached
// since before: the ones a mode's setup attached.
func newPrograms(before map[link.ID]ebpf.ProgramID) ([]*ebpf.Program, error) {
	now, err := rawTracepointLinkIDs()
	if err != nil {
		return nil, err
	}
	var progs []*ebpf.Program
	for id, prog := range now {
		if _, ok := before[id]; ok {
			continue
		}
		p, err := ebpf.NewProgramFromID(prog)
		if err != nil {
			return nil, err
		}
		progs = append(progs, p)
	}
	return progs, nil
}

// withMode sets a mode up, runs measure with the programs its setup
// attached to raw tracepoints, and tears it down.
func withMode(name string, setup func() (func(), error), measure func([]*ebpf.Program) error) error {
	before, err := rawTracepointLinkIDs()
	if err != nil {
		return err
	}
	teardown, err := setup()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer teardown()
	settle()
	progs, err := newPrograms(before)
	if err != nil {
		return fmt.Errorf("%s: finding its programs: %w", name, err)
	}
	defer func() {
		for _, p := range progs {
			p.Close()
		}
	}()
	if err := measure(progs); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// settle lets what a mode's setup left behind finish before it is
// measured: the benchmark's own garbage (a policy load parses the
// kernel's BTF and compiles on this process's heap, which a collection
// during the window would scan on the loop's other CPU) and the kernel's
// deferred work (freeing the verifier's state and the previous mode's
// maps after a grace period). A running agent has done both long before
// the system calls it serves; the goals are of that steady state.
func settle() {
	runtime.GC()
	time.Sleep(settleTime)
}

// settleTime is how long settle waits for the kernel's deferred work
const settleTime = 200 * time.Millisecond

// runStats sums the run time and count of programs (bpf_stats).
func runStats(progs []*ebpf.Program) (time.Duration, uint64) {
	var rt time.Duration
	var n uint64
	for _, p := range progs {
		if st, err := p.Stats(); err == nil {
			rt += st.Runtime
			n += st.RunCount
		}
	}
	return rt, n
}

// attachPoints returns how many programs setup attaches to each raw
// tracepoint.
func attachPoints(setup func() (func(), error)) (map[string]int, error) {
	before, err := rawTracepointLinks()
	if err != nil {
		return nil, err
	}
	teardown, err := setup()
	if err != nil {
		return nil, err
	}
	after, err := rawTracepointLinks()
	teardown()
	if err != nil {
		return nil, err
	}
	for tp, n := range before {
		after[tp] -= n
	}
	return after, nil
}

// emptyPrograms attaches programs that do nothing, as many to each raw
// tracepoint as points says: the floor any hook on those tracepoints pays,
// whatever it does.
func emptyPrograms(points map[string]int) func() (func(), error) {
	return floorPrograms(points, false)
}

// tailCallPrograms is emptyPrograms with each program tail-calling an
// empty one, at a constant index as the dispatcher's entry program calls
// its filter (bpf/dispatch.c): what that one tail call costs a call.
func tailCallPrograms(points map[string]int) func() (func(), error) {
	return floorPrograms(points, true)
}

func floorPrograms(points map[string]int, tailCall bool) func() (func(), error) {
	return func() (func(), error) {
		var closers []func()
		closeAll := func() {
			for _, c := range closers {
				c()
			}
		}
		fail := func(err error) (func(), error) {
			closeAll()
			return nil, err
		}
		empty := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
		load := func(tp string, ins asm.Instructions) (*ebpf.Program, error) {
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
				Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: tp, License: "GPL", Instructions: ins,
			})
			if err != nil {
				return nil, fmt.Errorf("loading empty %s program: %w", tp, err)
			}
			closers = append(closers, func() { prog.Close() })
			return prog, nil
		}
		for tp, n := range points {
			for range n {
				ins := empty
				if tailCall {
					target, err := load(tp, empty)
					if err != nil {
						return fail(err)
					}
					chain, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
					if err != nil {
						return fail(fmt.Errorf("a program array for %s: %w", tp, err))
					}
					closers = append(closers, func() { chain.Close() })
					if err := chain.Put(uint32(0), target); err != nil {
						return fail(fmt.Errorf("a program array for %s: %w", tp, err))
					}
					// r1, the context, is passed on as it came
					ins = asm.Instructions{asm.LoadMapPtr(asm.R2, chain.FD()), asm.Mov.Imm(asm.R3, 0), asm.FnTailCall.Call(),
						asm.Mov.Imm(asm.R0, 0), asm.Return()}
				}
				prog, err := load(tp, ins)
				if err != nil {
					return fail(err)
				}
				l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
				if err != nil {
					return fail(fmt.Errorf("attaching empty %s program: %w", tp, err))
				}
				closers = append(closers, func() { l.Close() })
			}
		}
		return closeAll, nil
	}
}

// policyFiles parses policy files, each of one or more policies.
func policyFiles(paths ...string) ([]*tracingpolicy.TracingPolicy, error) {
	var out []*tracingpolicy.TracingPolicy
	for _, p := range paths {
		pols, err := tracingpolicy.ParseFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, pols...)
	}
	return out, nil
}

// shapedPolicies returns n policies of the shape of the shipped ones: a
// Prefix watch on security_file_permission and a Sigkill on one
// fd_install path, each on paths of its own that the loop never touches.
func shapedPolicies(n int) ([]*tracingpolicy.TracingPolicy, error) {
	var out []*tracingpolicy.TracingPolicy
	for i := range n {
		doc := testutil.ShapedPolicy(fmt.Sprintf("shape-%d", i), "", fmt.Sprintf("/etc/shape-%d/", i), fmt.Sprintf("/tmp/shape-%d-forbidden", i))
		pols, err := tracingpolicy.Parse(fmt.Sprintf("shape-%d.yaml", i), doc)
		if err != nil {
			return nil, err
		}
		out = append(out, pols...)
	}
	return out, nil
}

// loadPolicies loads policies as the agent would on this kernel (their
// mechanism chosen from the probe); the loop touches none of their paths.
func loadPolicies(pols []*tracingpolicy.TracingPolicy, features map[string]bool) func() (func(), error) {
	return func() (func(), error) {
		_, done, err := managerWith(pols, features)
		return done, err
	}
}

// managerWith loads pols into a hook manager of their own ring buffer, as
// the agent does; done unloads them.
func managerWith(pols []*tracingpolicy.TracingPolicy, features map[string]bool) (_ *hooks.Manager, done func(), _ error) {
	ring, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 8 << 20})
	if err != nil {
		return nil, nil, err
	}
	m := hooks.NewManager(zerolog.Nop(), ring, sensor.Options{Features: features})
	done = func() { m.Close(); ring.Close() }
	for _, p := range pols {
		if err := m.LoadPolicy(p); err != nil {
			done()
			return nil, nil, err
		}
	}
	return m, done, nil
}

// policyMemory loads pols and returns the most kernel memory one of them
// is charged, as tetra tracingpolicy list shows it: the sum of its hooks'.
func policyMemory(pols []*tracingpolicy.TracingPolicy, features map[string]bool) (uint64, error) {
	m, done, err := managerWith(pols, features)
	if err != nil {
		return 0, err
	}
	defer done()
	var most uint64
	for _, p := range m.Status() {
		var mem uint64
		for _, h := range p.Hooks {
			mem += h.Stats.MemoryBytes
		}
		if mem == 0 {
			return 0, fmt.Errorf("policy %s: no kernel memory reported", p.Name)
		}
		most = max(most, mem)
	}
	return most, nil
}

func median(v []float64) float64 { return quantile(v, 0.5) }

// quantile is the q-quantile of v, interpolated between the two nearest
// values.
func quantile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

// spread is a ratio's median over rounds, with its quartiles.
type spread struct{ q1, median, q3 float64 }

func (s spread) String() string { return fmt.Sprintf("%.4f (%.4f to %.4f)", s.median, s.q1, s.q3) }

// pairedRatios divides each round's a by the same round's b.
func pairedRatios(a, b []float64) spread {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return spread{quantile(r, 0.25), quantile(r, 0.5), quantile(r, 0.75)}
}

// syscallOverhead measures the open/read/close loop with no agent, with
// the floor (empty programs where the agent attaches), with policies (the
// -policy files), and with 1 and 50 policies of the shipped ones' shape:
// the cost of a policy count, which the dispatcher keeps flat.
func syscallOverhead(rounds int, window time.Duration, policy string) ([]result, error) {
	if _, err := btf.LoadKernelSpec(); err != nil {
		return nil, fmt.Errorf("kernel BTF: %w", err)
	}
	report, err := kernelfeatures.Run(context.Background())
	if err != nil {
		return nil, fmt.Errorf("probing the kernel: %w", err)
	}
	path, cleanup, err := plainFile()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	type mode struct {
		name  string
		setup func() (func(), error)
		ops   []float64
		// bpf_stats of the mode's own programs over its loops
		runtime time.Duration
		runs    uint64
	}
	paths := strings.Split(policy, ",")
	shipped, err := policyFiles(paths...)
	if err != nil {
		return nil, err
	}
	one, err := shapedPolicies(1)
	if err != nil {
		return nil, err
	}
	fifty, err := shapedPolicies(50)
	if err != nil {
		return nil, err
	}
	agent := loadPolicies(shipped, report.Map())
	points, err := attachPoints(agent)
	if err != nil {
		return nil, fmt.Errorf("counting the agent's attach points: %w", err)
	}
	for _, set := range [][]*tracingpolicy.TracingPolicy{one, fifty} {
		p, err := attachPoints(loadPolicies(set, report.Map()))
		if err != nil {
			return nil, fmt.Errorf("counting the agent's attach points: %w", err)
		}
		if !maps.Equal(p, points) {
			fmt.Printf("note: %d shaped policies attach %v, the -policy files %v; the floor is the latter's\n", len(set), p, points)
		}
	}
	mem, err := policyMemory(fifty, report.Map())
	if err != nil {
		return nil, fmt.Errorf("the kernel memory of %d shaped policies: %w", len(fifty), err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	modes := []*mode{
		{name: "no agent", setup: func() (func(), error) { return func() {}, nil }},
		{name: fmt.Sprintf("floor (empty programs: %v)", points), setup: emptyPrograms(points)},
		{name: "agent (" + strings.Join(names, ", ") + ")", setup: agent},
		{name: "agent (1 shaped policy)", setup: loadPolicies(one, report.Map())},
		{name: "agent (50 shaped policies)", setup: loadPolicies(fifty, report.Map())},
	}
	// per-program run times (kernel.bpf_stats_enabled while this holds)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		fmt.Printf("note: no per-program run times: %v\n", err)
	} else {
		defer stats.Close()
	}
	lp, err := startLooper(path, window)
	if err != nil {
		return nil, err
	}
	defer lp.Close()
	fmt.Printf("syscall overhead: open/read/close of %s, %d rounds x %v per mode, interleaved\n", path, rounds, window)
	for r := 0; r < rounds; r++ {
		// each round starts one mode later: a mode measured right after
		// another's teardown (or first in a round) is, over the rounds,
		// every mode
		for i := range modes {
			m := modes[(r+i)%len(modes)]
			var ops float64
			err := withMode(m.name, m.setup, func(progs []*ebpf.Program) error {
				rt0, n0 := runStats(progs)
				var err error
				ops, err = lp.window()
				rt1, n1 := runStats(progs)
				m.runtime += rt1 - rt0
				m.runs += n1 - n0
				if err != nil {
					return fmt.Errorf("open/read/close loop: %w", err)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			m.ops = append(m.ops, ops)
			fmt.Printf("  round %d  %-40s %10.0f ops/s\n", r+1, m.name, ops)
		}
	}
	none, floor := median(modes[0].ops), median(modes[1].ops)
	fmt.Printf("\n%-40s %12s %10s %14s %12s\n", "mode", "median ops/s", "÷ none", "ns/program run", "program ns/op")
	progPerOp := make([]float64, len(modes))
	for i, m := range modes {
		perRun, perOp := "—", "—"
		if m.runs > 0 {
			perRun = fmt.Sprintf("%.0f", float64(m.runtime.Nanoseconds())/float64(m.runs))
			var ops float64
			for _, o := range m.ops {
				ops += o * window.Seconds()
			}
			progPerOp[i] = float64(m.runtime.Nanoseconds()) / ops
			perOp = fmt.Sprintf("%.0f", progPerOp[i])
		}
		fmt.Printf("%-40s %12.0f %10.3f %14s %12s\n", m.name, median(m.ops), median(m.ops)/none, perRun, perOp)
	}
	// The goals' ratios are of the same round's windows, then the median
	// over rounds: a round's modes run seconds apart, so what drifts
	// slower than that (other load, the host's clock) cancels, which a
	// ratio of each mode's median over all rounds keeps.
	agentFloor, fiftyFloor, fiftyOne := pairedRatios(modes[2].ops, modes[1].ops), pairedRatios(modes[4].ops, modes[1].ops), pairedRatios(modes[4].ops, modes[3].ops)
	fmt.Printf("\nratios of one round's windows, median (quartiles):\n")
	fmt.Printf("agent ÷ floor = %s (goal >= 0.97)\n50 policies ÷ floor = %s (goal >= 0.95)\n50 policies ÷ 1 policy = %s (goal >= 0.97)\n",
		agentFloor, fiftyFloor, fiftyOne)
	fmt.Printf("agent ÷ no agent = %.3f\nfloor ÷ no agent = %.3f\n", median(modes[2].ops)/none, floor/none)
	// What the programs' own run time (bpf_stats) predicts: the floor's
	// time per operation plus the agent's programs' extra time. A measured
	// ratio well below this is the windows' noise or a cost outside the
	// programs (cache misses they cause in the system call).
	if progPerOp[1] > 0 && progPerOp[2] > 0 {
		opNs := 1e9 / floor
		fmt.Printf("program time alone predicts agent ÷ floor = %.4f (%.0f ns per operation more than the floor's programs, of %.0f)\n",
			opNs/(opNs+progPerOp[2]-progPerOp[1]), progPerOp[2]-progPerOp[1], opNs)
	}
	fmt.Printf("kernel memory per policy (tetra tracingpolicy list), the most of %d shaped policies: %d bytes (goal <= 64 KiB)\n", len(fifty), mem)
	return []result{
		{"a", "syscall overhead, agent ÷ floor", fmt.Sprintf("%.4f", agentFloor.median), ">= 0.97", metStr(agentFloor.median >= 0.97)},
		{"a", "50 shaped policies ÷ floor", fmt.Sprintf("%.4f", fiftyFloor.median), ">= 0.95", metStr(fiftyFloor.median >= 0.95)},
		{"a", "50 shaped policies ÷ 1", fmt.Sprintf("%.4f", fiftyOne.median), ">= 0.97", metStr(fiftyOne.median >= 0.97)},
		{"a", "agent ÷ no agent, floor ÷ no agent", fmt.Sprintf("%.3f, %.3f", median(modes[2].ops)/none, floor/none), "", "—"},
		{"a", "kernel memory per policy, the most of 50 shaped", fmt.Sprintf("%d bytes", mem), "<= 64 KiB", metStr(mem <= 64<<10)},
	}, nil
}
