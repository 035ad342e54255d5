package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// quickstartPolicy is Tetragon's examples/quickstart/file_monitoring.yaml,
// byte for byte: return probes (return: true, returnArg int) on
// security_file_permission, security_mmap_file and security_path_truncate.
const quickstartPolicy = "../../test/testdata/tetragon/examples/quickstart/file_monitoring.yaml"

// waitUntil collects lines containing marker until one also contains end.
func waitUntil(t *testing.T, lines <-chan string, marker, end string) []string {
	t.Helper()
	var got []string
	deadline := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("getevents ended; got %q", got)
			}
			if strings.Contains(l, marker) {
				got = append(got, l)
				if strings.Contains(l, end) {
					return got
				}
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %q in lines with %q; got %q", end, marker, got)
		}
	}
}

// TestSeedFileMonitoringQuickstart is the file-monitoring seed with
// Tetragon's quickstart policy exactly as published, loaded from a policy
// directory and with --tracing-policy: the compact lines the seed shows
// for cat /etc/shadow and for a write under /etc, an mmap and a truncate
// of watched files, and the return value in the JSON events.
func TestSeedFileMonitoringQuickstart(t *testing.T) {
	b := build(t)
	policy, err := filepath.Abs(quickstartPolicy)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"--tracing-policy-dir", "--tracing-policy"} {
		t.Run(strings.TrimPrefix(how, "--"), func(t *testing.T) {
			arg := policy
			if how == "--tracing-policy-dir" {
				arg = policyDir(t)
				if err := os.WriteFile(filepath.Join(arg, "file_monitoring.yaml"), text, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			quickstartScenario(t, b, startAgent(t, b, how, arg))
		})
	}
}

func quickstartScenario(t *testing.T, b binaries, a *agentProc) {
	host, _ := os.Hostname()
	cat, _ := filepath.EvalSymlinks("/bin/cat")
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// each check compares the lines with repeats collapsed: a reader
	// loops until end of file, and each read is checked
	check := func(what string, got, want []string) {
		t.Helper()
		if got = slices.Compact(got); !slices.Equal(got, want) {
			t.Fatalf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	lines := getevents(t, b, a.socket, "-o", "compact", "--color", "never", "--host", "--process", "^"+regexp.QuoteMeta(cat)+"$")
	if err := exec.Command("cat", "/etc/shadow").Run(); err != nil {
		t.Fatalf("cat /etc/shadow: %v", err)
	}
	check("cat /etc/shadow", waitUntil(t, lines, "/etc/shadow", "💥 exit"), []string{
		fmt.Sprintf("🚀 process %s %s /etc/shadow", host, cat),
		fmt.Sprintf("📚 read    %s %s /etc/shadow", host, cat),
		fmt.Sprintf("💥 exit    %s %s /etc/shadow 0", host, cat),
	})

	// a file of this run's own under /etc, removed after: the host's /etc
	// is not written otherwise
	bar := fmt.Sprintf("/etc/bar-e2e-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.Remove(bar) })
	lines = getevents(t, b, a.socket, "-o", "compact", "--color", "never", "--host", "--process", "^"+regexp.QuoteMeta(sh)+"$")
	script := "echo foo >> " + bar
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", script, err, out)
	}
	check(script, waitUntil(t, lines, bar, "💥 exit"), []string{
		fmt.Sprintf("🚀 process %s %s -c \"%s\"", host, sh, script),
		fmt.Sprintf("📝 write   %s %s %s", host, sh, bar),
		fmt.Sprintf("💥 exit    %s %s -c \"%s\" 0", host, sh, script),
	})

	// security_mmap_file and security_path_truncate, by this test binary
	// as a helper; the JSON events carry the return value
	compact := getevents(t, b, a.socket, "-o", "compact", "--color", "never", "--host", "--process", "^"+regexp.QuoteMeta(self)+"$")
	jsonLines := getevents(t, b, a.socket, "-o", "json", "--process", "^"+regexp.QuoteMeta(self)+"$")
	for _, op := range []struct{ name, path string }{{"mmap", "/etc/shadow"}, {"truncate", bar}} {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), testutil.FileHelperEnv+"="+op.name+":"+op.path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s helper on %s: %v %s", op.name, op.path, err, out)
		}
	}
	check("mmap of /etc/shadow", waitUntil(t, compact, "/etc/shadow", "mmap"), []string{
		fmt.Sprintf("📝 mmap-r  %s %s /etc/shadow", host, self),
	})
	check("truncate(2) of "+bar, waitUntil(t, compact, bar, "truncate"), []string{
		fmt.Sprintf("📝 truncate %s %s %s", host, self, bar),
	})
	for _, fn := range []string{"security_mmap_file", "security_path_truncate"} {
		l := waitUntil(t, jsonLines, `"function_name":"`+fn+`"`, fn)[0]
		for _, want := range []string{`"return":{"int_arg":0}`, `"policy_name":"file-monitoring-filtered"`} {
			if !strings.Contains(l, want) {
				t.Errorf("%s event lacks %s:\n%s", fn, want, l)
			}
		}
	}
}
