package probe_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/probe"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

func run(t *testing.T) probe.Report {
	t.Helper()
	testutil.RequireRoot(t)
	rep, err := probe.Run(context.Background())
	if err != nil {
		t.Fatalf("probe.Run: %v", err)
	}
	return rep
}

// TestRunMatchesLane checks the probe against the lane's measured facts:
// on a lane, the available features are exactly the ones it lists.
func TestRunMatchesLane(t *testing.T) {
	rep := run(t)
	for _, f := range rep.Features {
		t.Logf("%-16s %-5v %s", f.Name, f.Available, f.Reason)
	}
	want, ok := testutil.LaneFeatures()
	if !ok {
		t.Logf("%s is not set: checking only what the kernel itself tells", testutil.LaneFeaturesEnv)
		return
	}
	for _, n := range want {
		if !probe.Known(n) {
			t.Errorf("%s names unknown feature %q", testutil.LaneFeaturesEnv, n)
		}
	}
	for _, f := range rep.Features {
		listed := slices.Contains(want, f.Name)
		switch {
		case listed && !f.Available:
			t.Errorf("lane %q lists %s but the probe finds it unavailable: %s", testutil.Lane(), f.Name, f.Reason)
		case !listed && f.Available:
			t.Errorf("lane %q does not list %s but the probe finds it available", testutil.Lane(), f.Name)
		}
	}
}

// TestRunAgreesWithKernel cross-checks verdicts against what the kernel
// publishes independently of loading programs.
func TestRunAgreesWithKernel(t *testing.T) {
	rep := run(t)

	if !slices.Equal(names(rep), probe.Names()) {
		t.Fatalf("report features %v, want %v in that order", names(rep), probe.Names())
	}
	for _, f := range rep.Features {
		if f.Available == (f.Reason != "") {
			t.Errorf("%s: available=%v with reason %q", f.Name, f.Available, f.Reason)
		}
		if strings.Contains(f.Reason, "\n") {
			t.Errorf("%s: reason spans lines: %q", f.Name, f.Reason)
		}
	}

	_, err := os.Stat("/sys/kernel/btf/vmlinux")
	if err == nil && !rep.Has(probe.BTF) {
		t.Errorf("/sys/kernel/btf/vmlinux exists but btf is unavailable")
	}
	// Run mounts securityfs, so the list is readable now.
	lsms, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		t.Fatalf("reading the LSM list after the probe mounted securityfs: %v", err)
	}
	active := slices.Contains(strings.Split(strings.TrimSpace(string(lsms)), ","), "bpf")
	if f, _ := rep.Feature(probe.BPFLSM); !active && (f.Available || !strings.Contains(f.Reason, "not an active LSM")) {
		t.Errorf("bpf is not in the LSM list %q, yet bpf_lsm = %+v", lsms, f)
	}
	// Kprobes, whichever way they attach, exist only with CONFIG_KPROBE_EVENTS.
	if _, err := os.Stat("/sys/kernel/tracing/kprobe_events"); errors.Is(err, os.ErrNotExist) {
		for _, n := range []string{probe.Kprobe, probe.Kretprobe, probe.OverrideReturn} {
			if rep.Has(n) {
				t.Errorf("kernel has no kprobe_events, yet %s is available", n)
			}
		}
	}
	// Kernel functions cannot be hooked through BTF without BTF.
	if !rep.Has(probe.BTF) {
		for _, n := range []string{probe.Fentry, probe.Fexit, probe.FmodRet, probe.BPFLSM, probe.TpBTF, probe.BPFLoop} {
			if rep.Has(n) {
				t.Errorf("kernel BTF is unavailable, yet %s is available", n)
			}
		}
	}
}

func names(rep probe.Report) []string {
	var out []string
	for _, f := range rep.Features {
		out = append(out, f.Name)
	}
	return out
}

// TestRunIsFast holds the probe to its budget; under the emulated CPU of
// the qemu lanes everything is far slower, so the budget grows there.
func TestRunIsFast(t *testing.T) {
	budget := time.Second
	if lane := testutil.Lane(); lane != "" && lane != "host" {
		budget = 30 * time.Second
	}
	rep := run(t)
	if rep.Duration <= 0 || rep.Duration > budget {
		t.Errorf("probe took %v, budget %v", rep.Duration, budget)
	}
}

// TestRunCleansUp checks that a run leaves no file descriptors (programs,
// maps, links, perf events) and no pin directory behind.
func TestRunCleansUp(t *testing.T) {
	run(t) // warms caches the library keeps on purpose (kernel BTF)
	before := openFDs(t)
	rep := run(t)
	after := openFDs(t)
	if !rep.Has(probe.LinkPinning) {
		t.Logf("link_pinning unavailable (%s): only file descriptors are checked", mustFeature(t, rep, probe.LinkPinning).Reason)
	}
	if len(after) != len(before) {
		t.Errorf("open fds went from %d to %d:\nbefore %v\nafter  %v", len(before), len(after), before, after)
	}
	leftovers, err := filepath.Glob(filepath.Join("/sys/fs/bpf", probe.PinDirPattern()))
	if err != nil {
		t.Fatal(err)
	}
	if len(leftovers) > 0 {
		t.Errorf("pin directories left behind: %v", leftovers)
	}
}

func mustFeature(t *testing.T, rep probe.Report, name string) probe.Feature {
	t.Helper()
	f, ok := rep.Feature(name)
	if !ok {
		t.Fatalf("report lacks %s", name)
	}
	return f
}

func openFDs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the directory fd of ReadDir itself is gone already
		}
		out = append(out, e.Name()+"->"+target)
	}
	return out
}

func TestRunCanceled(t *testing.T) {
	testutil.RequireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := probe.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a canceled context returned %v, want context.Canceled", err)
	}
}

func TestReportAccessors(t *testing.T) {
	rep := probe.Report{Features: []probe.Feature{
		{Name: probe.TpBTF, Available: true},
		{Name: probe.Kprobe, Reason: "no kprobe_events"},
	}}
	if !rep.Has(probe.TpBTF) || rep.Has(probe.Kprobe) || rep.Has(probe.Fentry) {
		t.Errorf("Has: tp_btf=%v kprobe=%v fentry=%v", rep.Has(probe.TpBTF), rep.Has(probe.Kprobe), rep.Has(probe.Fentry))
	}
	m := rep.Map()
	if len(m) != 2 || !m[probe.TpBTF] || m[probe.Kprobe] {
		t.Errorf("Map() = %v", m)
	}
	if f, ok := rep.Feature(probe.Kprobe); !ok || f.Reason != "no kprobe_events" {
		t.Errorf("Feature(kprobe) = %+v, %v", f, ok)
	}
	if got := rep.Available(); !slices.Equal(got, []string{probe.TpBTF}) {
		t.Errorf("Available() = %v", got)
	}
	if !probe.Known(probe.LinkPinning) || probe.Known("kprobes") {
		t.Errorf("Known misjudges names")
	}
}
