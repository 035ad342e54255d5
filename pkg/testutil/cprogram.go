package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CProgram puts the test program built from the C source src (a path
// relative to the test's package, ending in .c) at dst. The kernel lanes'
// guests have no compiler, so the lane runner builds it beside the source
// (src without .c); elsewhere it is compiled here. No compiler is a
// failure, not a skip: a test skips only for a kernel feature.
func CProgram(t *testing.T, src, dst string) string {
	t.Helper()
	if prebuilt, err := os.ReadFile(strings.TrimSuffix(src, ".c")); err == nil {
		if err := os.WriteFile(dst, prebuilt, 0o755); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	cc := ""
	for _, c := range []string{"clang-19", "clang", "cc"} {
		if p, err := exec.LookPath(c); err == nil {
			cc = p
			break
		}
	}
	if cc == "" {
		t.Fatalf("no C compiler (clang-19, clang or cc) to build %s", src)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-O1", "-o", dst, abs).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v: %s", abs, err, out)
	}
	return dst
}
