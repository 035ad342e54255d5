package testutil

import (
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
)

// helperEnv tells a re-executed test binary which requirement its helper
// test checks ("feature:<name>" or "root").
const helperEnv = "TETRAGON_TESTUTIL_HELPER"

func TestMain(m *testing.M) {
	flag.Parse()
	// The helper only makes sense when re-executed by the tests below.
	if os.Getenv(helperEnv) == "" {
		skip := "^TestHelperRequirement$"
		if cur := flag.Lookup("test.skip").Value.String(); cur != "" {
			skip = cur + "|" + skip
		}
		if err := flag.Set("test.skip", skip); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

func TestHelperRequirement(t *testing.T) {
	mode := os.Getenv(helperEnv)
	switch {
	case mode == "root":
		RequireRoot(t)
	case strings.HasPrefix(mode, "feature:"):
		RequireFeature(t, strings.TrimPrefix(mode, "feature:"))
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
	t.Log("requirement met")
}

// runHelper re-executes bin's helper test with env on top of an
// environment cleared of lane and CI settings, and returns its output.
func runHelper(t *testing.T, bin string, cred *syscall.Credential, env ...string) string {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^TestHelperRequirement$", "-test.v")
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != LaneEnv && k != LaneFeaturesEnv && k != "CI" && k != helperEnv {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = filepath.Dir(bin)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running helper: %v\n%s", err, out)
	}
	return string(out)
}

func wantResult(t *testing.T, out, result, text string) {
	t.Helper()
	if !regexp.MustCompile(`(?m)^--- ` + result + `: TestHelperRequirement`).MatchString(out) {
		t.Errorf("helper did not report %s:\n%s", result, out)
	}
	if !strings.Contains(out, text) {
		t.Errorf("helper output lacks %q:\n%s", text, out)
	}
}

func TestRequireFeature(t *testing.T) {
	rep := Kernel(t)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	have, missing := rep.Available(), []kernelfeatures.Feature{}
	for _, f := range rep.Features {
		if !f.Available {
			missing = append(missing, f)
		}
	}

	if len(have) > 0 {
		t.Run("available", func(t *testing.T) {
			out := runHelper(t, bin, nil, helperEnv+"=feature:"+have[0])
			wantResult(t, out, "PASS", "requirement met")
		})
	}
	if len(missing) > 0 {
		m := missing[0]
		t.Run("missing skips", func(t *testing.T) {
			out := runHelper(t, bin, nil, helperEnv+"=feature:"+m.Name)
			wantResult(t, out, "SKIP", "kernel lacks "+m.Name+": "+m.Reason)
		})
		t.Run("missing but listed by the lane fails", func(t *testing.T) {
			out := runHelper(t, bin, nil, helperEnv+"=feature:"+m.Name,
				LaneEnv+"=test-lane", LaneFeaturesEnv+"=btf,"+m.Name)
			wantResult(t, out, "FAIL", `kernel lacks `+m.Name+`, which lane "test-lane" lists`)
		})
	} else {
		t.Log("this kernel has every probed feature; the missing-feature paths cannot be exercised")
	}
	t.Run("unknown name fails", func(t *testing.T) {
		out := runHelper(t, bin, nil, helperEnv+"=feature:kprobes")
		wantResult(t, out, "FAIL", `unknown kernel feature "kprobes"`)
	})
}

// TestRequireRoot runs the helper as an unprivileged user, from a copy of
// the test binary that user can execute.
func TestRequireRoot(t *testing.T) {
	RequireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parent is private to root; this one must be reachable.
	dir, err := os.MkdirTemp("", "testutil-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	copyFile(t, self, bin)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}

	t.Run("skips on a developer machine", func(t *testing.T) {
		wantResult(t, runHelper(t, bin, nobody, helperEnv+"=root"), "SKIP", "test needs root (euid 65534)")
	})
	t.Run("fails under CI", func(t *testing.T) {
		wantResult(t, runHelper(t, bin, nobody, helperEnv+"=root", "CI=true"), "FAIL", "test needs root")
	})
	t.Run("fails on a lane", func(t *testing.T) {
		wantResult(t, runHelper(t, bin, nobody, helperEnv+"=root", LaneFeaturesEnv+"=btf"), "FAIL", "test needs root")
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLaneFeatures(t *testing.T) {
	t.Setenv(LaneFeaturesEnv, " tp_btf, btf,,uprobe ")
	got, ok := LaneFeatures()
	if !ok || !slices.Equal(got, []string{"tp_btf", "btf", "uprobe"}) {
		t.Fatalf("LaneFeatures() = %q, %v", got, ok)
	}
	if err := os.Unsetenv(LaneFeaturesEnv); err != nil {
		t.Fatal(err)
	}
	if got, ok := LaneFeatures(); ok || got != nil {
		t.Fatalf("LaneFeatures() without the variable = %q, %v", got, ok)
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		available, listed bool
		want              outcome
	}{
		{true, true, proceed},
		{true, false, proceed},
		{false, true, fail},
		{false, false, skip},
	} {
		if got := verdict(kernelfeatures.Feature{Name: "x", Available: tc.available}, tc.listed); got != tc.want {
			t.Errorf("verdict(available=%v, listed=%v) = %v, want %v", tc.available, tc.listed, got, tc.want)
		}
	}
}
