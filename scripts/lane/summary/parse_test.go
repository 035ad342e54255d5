package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

func parseFile(t *testing.T, path string, console bool) *Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parse(f, console)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestParseGoTest(t *testing.T) {
	res := parseFile(t, "testdata/gotest.log", false)
	if want := (Counts{Passed: 1, Failed: 1, Skipped: 1}); res.Top != want {
		t.Errorf("top = %+v, want %+v", res.Top, want)
	}
	if want := (Counts{Failed: 1, Skipped: 1}); res.Sub != want {
		t.Errorf("sub = %+v, want %+v", res.Sub, want)
	}
	wantFailed := []string{"example.com/m/pkg/b: TestB", "example.com/m/pkg/b: TestB/two"}
	if !slices.Equal(res.FailedTests, wantFailed) {
		t.Errorf("failed tests %q, want %q", res.FailedTests, wantFailed)
	}
	wantSkips := []string{
		"example.com/m/pkg/b: TestB/one: b_test.go:10: kernel lacks kprobe: no kprobe_events",
		"example.com/m/pkg/c: TestC: c_test.go:5: kernel lacks fentry: EPERM",
	}
	if !slices.Equal(res.Skips, wantSkips) {
		t.Errorf("skips %q, want %q", res.Skips, wantSkips)
	}
	wantPkgs := []string{
		"example.com/m/pkg/d: did not build",
		"example.com/m/pkg/f: failed without a failing test (panic or timeout?)",
	}
	if !slices.Equal(res.FailedPackages, wantPkgs) {
		t.Errorf("failed packages %q, want %q", res.FailedPackages, wantPkgs)
	}
	if len(res.Broken) != 0 {
		t.Errorf("go test output cannot break a lane, got %q", res.Broken)
	}
	if got := verdictLine(t, res, "host"); got != "lane host: 1 passed, 4 failed, 2 skipped" {
		t.Errorf("verdict %q", got)
	}
}

func TestParseConsole(t *testing.T) {
	res := parseFile(t, "testdata/console.log", true)
	if want := (Counts{Passed: 2, Failed: 1}); res.Top != want {
		t.Errorf("top = %+v, want %+v", res.Top, want)
	}
	if want := (Counts{Skipped: 1}); res.Sub != want {
		t.Errorf("sub = %+v, want %+v", res.Sub, want)
	}
	wantPkgs := []string{
		"example.com/m/pkg/d: test binary did not build",
		"example.com/m/pkg/f: exit status 2 without a failing test (panic or timeout?)",
	}
	if !slices.Equal(res.FailedPackages, wantPkgs) {
		t.Errorf("failed packages %q, want %q", res.FailedPackages, wantPkgs)
	}
	if want := []string{"example.com/m/pkg/c: TestC/sub: c_test.go:5: kernel lacks override_return: unknown func"}; !slices.Equal(res.Skips, want) {
		t.Errorf("skips %q, want %q", res.Skips, want)
	}
	if got := verdictLine(t, res, "debian-6.1"); got != "lane debian-6.1: 2 passed, 3 failed, 1 skipped" {
		t.Errorf("verdict %q", got)
	}
}

func TestParseBrokenConsole(t *testing.T) {
	for _, tc := range []struct {
		name, log, broken string
	}{
		{"never booted", "SeaBIOS\r\nBooting from ROM..\r\n", "never reached /init"},
		{"cut short", "@@lane begin 6.1\n@@lane pkg p\n=== RUN   TestA\n", "no end marker"},
		{"escape codes before markers", "\x1bc\x1b[?7l@@lane begin 6.1\r\n\x1b[2J@@lane pkg p\r\n", "p: never finished"},
		{"panic", "@@lane begin 6.1\n[ 3.2] Kernel panic - not syncing: Attempted to kill init!\n", "kernel panic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := parse(strings.NewReader(tc.log), true)
			if err != nil {
				t.Fatal(err)
			}
			if res.ok() {
				t.Fatalf("a broken console passed: %+v", res)
			}
			all := append(slices.Clone(res.Broken), res.FailedPackages...)
			if !slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, tc.broken) }) {
				t.Errorf("lane and package failures %q lack %q", all, tc.broken)
			}
		})
	}
}

func TestParseCleanConsolePasses(t *testing.T) {
	log := "@@lane begin 6.1\n@@lane pkg p\n--- PASS: TestA (0.00s)\nPASS\n@@lane exit p 0\n@@lane end\n"
	res, err := parse(strings.NewReader(log), true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.ok() || verdictLine(t, res, "x") != "lane x: 1 passed, 0 failed, 0 skipped" {
		t.Fatalf("clean console: %+v", res)
	}
}

func verdictLine(t *testing.T, res *Result, lane string) string {
	t.Helper()
	var b bytes.Buffer
	res.write(&b, lane)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	return lines[len(lines)-1]
}
