package kernelfeatures_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

func run(t *testing.T) kernelfeatures.Report {
	t.Helper()
	testutil.RequireRoot(t)
	rep, err := kernelfeatures.Run(context.Background())
	if err != nil {
		t.Fatalf("kernelfeatures.Run: %v", err)
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
		if !kernelfeatures.Known(n) {
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

	if !slices.Equal(names(rep), kernelfeatures.Names()) {
		t.Fatalf("report features %v, want %v in that order", names(rep), kernelfeatures.Names())
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
	if err == nil && !rep.Has(kernelfeatures.BTF) {
		t.Errorf("/sys/kernel/btf/vmlinux exists but btf is unavailable")
	}
	// Run mounts securityfs, so the list is readable now.
	lsms, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		t.Fatalf("reading the LSM list after the probe mounted securityfs: %v", err)
	}
	active := slices.Contains(strings.Split(strings.TrimSpace(string(lsms)), ","), "bpf")
	if f, _ := rep.Feature(kernelfeatures.BPFLSM); !active && (f.Available || !strings.Contains(f.Reason, "not an active LSM")) {
		t.Errorf("bpf is not in the LSM list %q, yet bpf_lsm = %+v", lsms, f)
	}
	// Kprobes, whichever way they attach, exist only with CONFIG_KPROBE_EVENTS.
	if _, err := os.Stat("/sys/kernel/tracing/kprobe_events"); errors.Is(err, os.ErrNotExist) {
		for _, n := range []string{kernelfeatures.Kprobe, kernelfeatures.Kretprobe, kernelfeatures.OverrideReturn} {
			if rep.Has(n) {
				t.Errorf("kernel has no kprobe_events, yet %s is available", n)
			}
		}
	}
	// Kernel functions cannot be hooked through BTF without BTF.
	if !rep.Has(kernelfeatures.BTF) {
		for _, n := range []string{kernelfeatures.Fentry, kernelfeatures.Fexit, kernelfeatures.FmodRet, kernelfeatures.BPFLSM, kernelfeatures.TpBTF, kernelfeatures.BPFLoop} {
			if rep.Has(n) {
				t.Errorf("kernel BTF is unavailable, yet %s is available", n)
			}
		}
	}
}

func names(rep kernelfeatures.Report) []string {
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
	if !rep.Has(kernelfeatures.LinkPinning) {
		t.Logf("link_pinning unavailable (%s): only file descriptors are checked", mustFeature(t, rep, kernelfeatures.LinkPinning).Reason)
	}
	if len(after) != len(before) {
		t.Errorf("open fds went from %d to %d:\nbefore %v\nafter  %v", len(before), len(after), before, after)
	}
	leftovers, err := filepath.Glob(filepath.Join("/sys/fs/bpf", kernelfeatures.PinDirPattern()))
	if err != nil {
		t.Fatal(err)
	}
	if len(leftovers) > 0 {
		t.Errorf("pin directories left behind: %v", leftovers)
	}
}

func mustFeature(t *testing.T, rep kernelfeatures.Report, name string) kernelfeatures.Feature {
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
	if _, err := kernelfeatures.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a canceled context returned %v, want context.Canceled", err)
	}
}

func TestReportAccessors(t *testing.T) {
	rep := kernelfeatures.Report{Features: []kernelfeatures.Feature{
		{Name: kernelfeatures.TpBTF, Available: true},
		{Name: kernelfeatures.Kprobe, Reason: "no kprobe_events"},
	}}
	if !rep.Has(kernelfeatures.TpBTF) || rep.Has(kernelfeatures.Kprobe) || rep.Has(kernelfeatures.Fentry) {
		t.Errorf("Has: tp_btf=%v kprobe=%v fentry=%v", rep.Has(kernelfeatures.TpBTF), rep.Has(kernelfeatures.Kprobe), rep.Has(kernelfeatures.Fentry))
	}
	m := rep.Map()
	if len(m) != 2 || !m[kernelfeatures.TpBTF] || m[kernelfeatures.Kprobe] {
		t.Errorf("Map() = %v", m)
	}
	if f, ok := rep.Feature(kernelfeatures.Kprobe); !ok || f.Reason != "no kprobe_events" {
		t.Errorf("Feature(kprobe) = %+v, %v", f, ok)
	}
	if got := rep.Available(); !slices.Equal(got, []string{kernelfeatures.TpBTF}) {
		t.Errorf("Available() = %v", got)
	}
	if !kernelfeatures.Known(kernelfeatures.LinkPinning) || kernelfeatures.Known("kprobes") {
		t.Errorf("Known misjudges names")
	}
}
