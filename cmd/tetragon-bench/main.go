// Command tetragon-bench measures the agent's cost side by side on this
// machine and prints ratios (see docs/performance.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
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
	"github.com/tetragon-lite/tetragon/pkg/probe"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
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
func partNames() []string { return []string{"syscall", "events", "reload"} }

func main() {
	rounds := flag.Int("rounds", 7, "interleaved rounds per mode")
	window := flag.Duration("window", 500*time.Millisecond, "measuring window per round")
	policy := flag.String("policy", "policies/file-monitoring.yaml", "the policy the syscall benchmark loads")
	edits := flag.Int("edits", 100, "policy file edits the reload benchmark times")
	only := flag.String("only", "", "run only these parts, comma-separated: syscall (a), events (b, c, e: a real agent and tetra), reload (d)")
	rates := flag.String("rates", "10000,25000,50000,100000,200000,0", "events: read rates offered to the agent, events/s; 0 is as fast as one thread reads")
	step := flag.Duration("step", 5*time.Second, "events: how long each read rate runs")
	execs := flag.Int("execs", 10000, "events: processes in the exec storm")
	workers := flag.Int("exec-workers", 2, "events: workers starting the exec storm's processes in parallel (fork, exec, wait)")
	settle := flag.Duration("settle", 8*time.Second, "events: wait after the agent is ready before reading its idle RSS")
	tetragonBin := flag.String("tetragon", "", "events: the agent binary (default: build ./cmd/tetragon)")
	tetraBin := flag.String("tetra", "", "events: the tetra binary (default: build ./cmd/tetra)")
	profile := flag.String("profile", "", "events: write CPU profiles of the agent and tetra to this directory")
	flag.Parse()
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
	return func() (func(), error) {
		var closers []func()
		closeAll := func() {
			for _, c := range closers {
				c()
			}
		}
		for tp, n := range points {
			for range n {
				prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
					Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: tp, License: "GPL",
					Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
				})
				if err != nil {
					closeAll()
					return nil, fmt.Errorf("loading empty %s program: %w", tp, err)
				}
				l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
				if err != nil {
					prog.Close()
					closeAll()
					return nil, fmt.Errorf("attaching empty %s program: %w", tp, err)
				}
				closers = append(closers, func() { l.Close(); prog.Close() })
			}
		}
		return closeAll, nil
	}
}

// fileMonitoring loads the shipped file-monitoring policy as the agent
// would on this kernel (its mechanism chosen from the probe); the loop
// touches none of its paths.
func fileMonitoring(policy string, features map[string]bool) func() (func(), error) {
	return func() (func(), error) {
		pols, err := tracingpolicy.ParseFile(policy)
		if err != nil {
			return nil, err
		}
		ring, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 8 << 20})
		if err != nil {
			return nil, err
		}
		m := hooks.NewManager(zerolog.Nop(), ring, sensor.Options{Features: features})
		if err := m.LoadPolicy(pols[0]); err != nil {
			ring.Close()
			return nil, err
		}
		return func() { m.Close(); ring.Close() }, nil
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func syscallOverhead(rounds int, window time.Duration, policy string) ([]result, error) {
	if _, err := btf.LoadKernelSpec(); err != nil {
		return nil, fmt.Errorf("kernel BTF: %w", err)
	}
	report, err := probe.Run(context.Background())
	if err != nil {
		return nil, fmt.Errorf("probing the kernel: %w", err)
	}
	dir, err := os.MkdirTemp("", "tetragon-bench-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(path, []byte("not sensitive\n"), 0o644); err != nil {
		return nil, fmt.Errorf("writing the loop's file: %w", err)
	}
	type mode struct {
		name  string
		setup func() (func(), error)
		ops   []float64
	}
	agent := fileMonitoring(policy, report.Map())
	points, err := attachPoints(agent)
	if err != nil {
		return nil, fmt.Errorf("counting the agent's attach points: %w", err)
	}
	modes := []*mode{
		{name: "no agent", setup: func() (func(), error) { return func() {}, nil }},
		{name: fmt.Sprintf("floor (empty programs: %v)", points), setup: emptyPrograms(points)},
		{name: "agent (" + filepath.Base(policy) + ")", setup: agent},
	}
	fmt.Printf("syscall overhead: open/read/close of %s, %d rounds x %v per mode, interleaved\n", path, rounds, window)
	for r := 0; r < rounds; r++ {
		for _, m := range modes {
			teardown, err := m.setup()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			ops, err := loop(path, window)
			teardown()
			if err != nil {
				return nil, fmt.Errorf("open/read/close loop: %w", err)
			}
			m.ops = append(m.ops, ops)
			fmt.Printf("  round %d  %-40s %10.0f ops/s\n", r+1, m.name, ops)
		}
	}
	none, floor, withAgent := median(modes[0].ops), median(modes[1].ops), median(modes[2].ops)
	fmt.Printf("\n%-40s %12s %10s\n", "mode", "median ops/s", "÷ none")
	for _, m := range modes {
		fmt.Printf("%-40s %12.0f %10.3f\n", m.name, median(m.ops), median(m.ops)/none)
	}
	fmt.Printf("\nagent ÷ floor = %.3f (goal >= 0.97)\nagent ÷ no agent = %.3f\nfloor ÷ no agent = %.3f\n", withAgent/floor, withAgent/none, floor/none)
	return []result{
		{"a", "syscall overhead, agent ÷ floor", fmt.Sprintf("%.3f", withAgent/floor), ">= 0.97", metStr(withAgent/floor >= 0.97)},
		{"a", "agent ÷ no agent, floor ÷ no agent", fmt.Sprintf("%.3f, %.3f", withAgent/none, floor/none), "", "—"},
	}, nil
}
