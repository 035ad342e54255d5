package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

func TestParseStatCPU(t *testing.T) {
	// a command name with a space and a parenthesis, as a process may
	// name itself
	line := []byte("4242 (tetra (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 123 0 0\n")
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("CPU time %v, want %v (utime 250 + stime 75 ticks)", got, want)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 ten 12"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) did not fail", bad)
		}
	}
}

func TestCPUTimeOfSelf(t *testing.T) {
	// real /proc: spin a little and see it counted
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	after, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU time did not grow: %v, then %v", before, after)
	}
}

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\ttetragon\nVmHWM:\t   60000 kB\nVmRSS:\t   43008 kB\nRssAnon:\t    7000 kB\n")
	got, err := parseStatusKB(status, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	if got != 43008<<10 {
		t.Errorf("VmRSS %d, want %d", got, 43008<<10)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Error("a missing key did not fail")
	}
	if _, err := parseStatusKB([]byte("VmRSS:\t12 MB\n"), "VmRSS"); err == nil {
		t.Error("a unit other than kB did not fail")
	}
	if n, err := rss(os.Getpid()); err != nil || n == 0 {
		t.Errorf("rss of this process: %d, %v", n, err)
	}
}

func TestPairs(t *testing.T) {
	p := &pairs{binary: "/tmp/b/bench-true", seen: map[string]uint8{}}
	for _, l := range []string{
		`{"process_exec":{"process":{"exec_id":"a","binary":"/tmp/b/bench-true"}}}`,
		`{"process_exit":{"process":{"exec_id":"a","binary":"/tmp/b/bench-true"},"status":0}}`,
		`{"process_exec":{"process":{"exec_id":"b","binary":"/tmp/b/bench-true"}}}`,
		`{"process_exit":{"process":{"exec_id":"c","binary":"/tmp/b/bench-true"}}}`,
		// the shell that runs the storm names the binary in its arguments only
		`{"process_exec":{"process":{"exec_id":"d","binary":"/bin/sh","arguments":"-c /tmp/b/bench-true"}}}`,
		`not json`,
	} {
		p.line([]byte(l))
	}
	both, execOnly, exitOnly := p.count()
	if both != 1 || execOnly != 1 || exitOnly != 1 {
		t.Errorf("pairs %d, exec only %d, exit only %d; want 1, 1, 1", both, execOnly, exitOnly)
	}
}

func TestParseRates(t *testing.T) {
	got, err := parseRates("1000, 0,200000")
	if err != nil || len(got) != 3 || got[0] != 1000 || got[1] != 0 || got[2] != 200000 {
		t.Errorf("parseRates: %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "-5", "1,,2"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) did not fail", bad)
		}
	}
}

// The benchmark's policy must be one the agent loads.
func TestReadPolicyParses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "read.yaml")
	if err := os.WriteFile(path, readPolicy("/tmp/watched dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	pols, err := tracingpolicy.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 1 || pols[0].Metadata.Name != readPolicyName {
		t.Errorf("parsed %+v", pols)
	}
}

func TestLosses(t *testing.T) {
	a := losses{kernel: 5, queue: 1, subscriber: 10, decode: 0}
	b := losses{kernel: 2, queue: 1, subscriber: 4, decode: 0}
	if d := a.sub(b); d != (losses{kernel: 3, subscriber: 6}) || d.total() != 9 {
		t.Errorf("sub %+v, total %v", d, d.total())
	}
}

// TestTinyELFRuns: the exec storm's program is a valid executable that
// exits 0.
func TestTinyELFRuns(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("tinyELF is x86-64 code; elsewhere the storm runs a copy of true")
	}
	bin, err := stormBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := spawn(bin, 3); err != nil {
		t.Fatal(err)
	}
}

func TestPairedRatios(t *testing.T) {
	// the second round ran 10% slower in every mode: paired, it cancels
	a := []float64{97, 87.3, 96, 98}
	b := []float64{100, 90, 100, 100}
	got := pairedRatios(a, b)
	if want := (0.97 + 0.97) / 2; math.Abs(got.median-want) > 1e-9 {
		t.Errorf("median %v, want %v (of 0.96, 0.97, 0.97, 0.98)", got.median, want)
	}
	if math.Abs(got.q1-0.9675) > 1e-9 || math.Abs(got.q3-0.9725) > 1e-9 {
		t.Errorf("quartiles %v and %v, want 0.9675 and 0.9725", got.q1, got.q3)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3, 1, 2 = %v", m)
	}
	if q := quantile([]float64{10}, 0.75); q != 10 {
		t.Errorf("quantile of one value = %v", q)
	}
}

// TestQuantileOfHundred: the reload part's p99 of 100 edits is not their
// slowest one, which lies beyond it
func TestQuantileOfHundred(t *testing.T) {
	v := make([]float64, 100)
	for i := range 99 {
		v[i] = float64(99 - i) // unsorted: quantile sorts a copy
	}
	v[99] = 1000
	if q := quantile(v, 0.99); math.Abs(q-108.01) > 1e-9 {
		t.Errorf("p99 of 1..99 and 1000 = %v, want 108.01 (99 + 0.01 of the way to 1000)", q)
	}
	if v[0] != 99 {
		t.Errorf("quantile reordered its argument")
	}
}

// TestDumpJIT: the dump of a loaded program is its JIT image, in a file
// named as the kernel's symbol for it.
func TestDumpJIT(t *testing.T) {
	testutil.RequireRoot(t)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "jit_dump_test", Type: ebpf.SocketFilter, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 7), asm.Add.Imm(asm.R0, 1), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	want, ok := info.JitedInsns()
	if !ok || len(want) == 0 {
		t.Skip("the kernel does not JIT (net.core.bpf_jit_enable is 0)")
	}
	dir := t.TempDir()
	if err := dumpJIT(id, dir); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || !regexp.MustCompile(`/bpf_prog_[0-9a-f]{16}_jit_dump_test\.bin$`).MatchString(files[0]) {
		t.Fatalf("dumped %v, want one file named bpf_prog_<tag>_jit_dump_test.bin", files)
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("dumped %d bytes that differ from the kernel's %d-byte JIT image", len(got), len(want))
	}
}
