// Package testutil holds the helpers privileged tests share: root and
// kernel-feature requirements that skip on a kernel that lacks something,
// but fail on a lane whose kernel is known to have it.
package testutil

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
)

// Environment the lane runner (scripts/lane/run.sh) sets.
const (
	// LaneEnv names the lane (host, debian-6.1, ...).
	LaneEnv = "TETRAGON_LANE"
	// LaneFeaturesEnv lists, comma-separated, exactly the probe features
	// the lane's kernel is known to have.
	LaneFeaturesEnv = "TETRAGON_LANE_FEATURES"
)

// Lane returns the lane name, or "" outside the lane runner.
func Lane() string { return os.Getenv(LaneEnv) }

// LaneFeatures returns the features the lane runner says this kernel has,
// and whether it said anything at all.
func LaneFeatures() ([]string, bool) {
	raw, ok := os.LookupEnv(LaneFeaturesEnv)
	if !ok {
		return nil, false
	}
	var names []string
	for _, n := range strings.Split(raw, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names, true
}

// strict reports whether the environment demands that requirements hold:
// CI and the lanes run as root on kernels whose features are known.
func strict() bool {
	_, lane := os.LookupEnv(LaneFeaturesEnv)
	return lane || os.Getenv("CI") != ""
}

// RequireRoot skips the test unless it runs as root; under CI or a lane,
// where tests always run as root, it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if strict() {
		t.Fatalf("test needs root, and CI/lanes run tests as root (euid %d)", os.Geteuid())
	}
	t.Skipf("test needs root (euid %d)", os.Geteuid())
}

// KernelProbe runs the kernel feature probe at most once and keeps its
// answer, so that a test binary pays for the probe once.
type KernelProbe struct {
	once   sync.Once
	report kernelfeatures.Report
	err    error
}

// Report returns the probe's report, running the probe on first use.
func (k *KernelProbe) Report() (kernelfeatures.Report, error) {
	k.once.Do(func() { k.report, k.err = kernelfeatures.Run(context.Background()) })
	return k.report, k.err
}

// kernel is the probe shared by every test of the binary; the kernel does
// not change under a running test binary, so one answer serves all.
var kernel KernelProbe

// Kernel returns the probe report of the running kernel, failing the test
// if the probe cannot run.
func Kernel(t testing.TB) kernelfeatures.Report {
	t.Helper()
	RequireRoot(t)
	rep, err := kernel.Report()
	if err != nil {
		t.Fatalf("probing kernel features: %v", err)
	}
	return rep
}

// RequireFeature skips the test when the kernel lacks the named probe
// feature (see kernelfeatures.Names), saying why. When the lane runner lists the
// feature for this kernel, a missing feature is a bug and fails the test.
func RequireFeature(t testing.TB, name string) {
	t.Helper()
	if !kernelfeatures.Known(name) {
		t.Fatalf("unknown kernel feature %q (known: %s)", name, strings.Join(kernelfeatures.Names(), ", "))
	}
	f, _ := Kernel(t).Feature(name)
	listed, _ := LaneFeatures()
	switch verdict(f, slices.Contains(listed, name)) {
	case proceed:
	case fail:
		t.Fatalf("kernel lacks %s, which lane %q lists for it: %s", name, Lane(), f.Reason)
	case skip:
		t.Skipf("kernel lacks %s: %s", name, f.Reason)
	}
}

type outcome int

const (
	proceed outcome = iota
	skip
	fail
)

func verdict(f kernelfeatures.Feature, laneHasIt bool) outcome {
	switch {
	case f.Available:
		return proceed
	case laneHasIt:
		return fail
	default:
		return skip
	}
}
