package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestDottedPolicyName: Tetragon's policy names are DNS subdomains, often
// dotted (its process.credentials.changes.at.syscalls example); bpffs
// refuses a dot in a name, so such a policy failed to pin and never loaded.
func TestDottedPolicyName(t *testing.T) {
	b := build(t)
	const name = "process.credentials.changes"
	target := filepath.Join(t.TempDir(), "tetragon")
	if err := os.WriteFile(target, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	policies := policyDir(t)
	if err := os.WriteFile(filepath.Join(policies, "dotted.yaml"), testutil.KillOnOpenPolicy(name, target), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, b, "--tracing-policy-dir", policies)

	if out, err := exec.Command("cat", target).CombinedOutput(); !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s: %v %q, want killed by policy %q\nagent log:\n%s", target, err, out, name, a.logs)
	}
	l := list(t, b, a)
	if len(l.Policies) != 1 || l.Policies[0].Name != name || l.Policies[0].State != "TP_STATE_ENABLED" {
		t.Fatalf("tracingpolicy list = %+v, want %q enabled", l, name)
	}
	if _, err := os.Stat(filepath.Join(a.bpfDir, "policies", "process%2ecredentials%2echanges")); err != nil {
		t.Errorf("pinned policy directory: %v", err)
	}
}
