package hooks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// The seed enforcement policy, on a file of the test's directory.
const enforcementPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "enforcement"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/tetragon"
      matchActions:
      - action: Sigkill
`

// The file-monitoring quickstart's shape: reads of secrets, writes under
// a system directory, split by the access mask.
const fileMonitoringPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "file-monitoring"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "security_file_permission"
    syscall: false
    args:
    - index: 0
      type: "file"
    - index: 1
      type: "int"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Prefix"
        values:
        - "%[2]s/shadow"
        - "%[2]s/secrets"
      - index: 1
        operator: "Mask"
        values:
        - "4"
    - matchArgs:
      - index: 0
        operator: "Prefix"
        values:
        - "%[2]s/etc/"
      - index: 1
        operator: "Mask"
        values:
        - "2"
`

// Witnesses time the kill. Each observes, through the other mechanism,
// the point of the open where that mechanism acts, and only posts.
const (
	openExitWitness = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "open-exit"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "sys_openat"
    syscall: true
    return: true
    args:
    - index: 1
      type: "string"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/tetragon"
`
	fdInstallWitness = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "fd-install"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/tetragon"
`
)

// mechanisms are the rows: each mechanism that serves kprobes: hooks, and
// the probe feature it needs.
var mechanisms = []struct{ name, feature string }{
	{compiler.MechSyscallTracepoint, "tp_btf"},
	{compiler.MechKprobe, "kprobe"},
}

// differences are what the mechanisms do differently, as measured on
// Debian 6.1 and 6.12 (docs/mechanisms.md): the kprobe sees the function
// wherever the kernel calls it, the mapping only in the syscalls it maps.
var differences = map[string]struct {
	// dup(2) of a descriptor opened before the policy loaded calls
	// fd_install with the protected file
	dupKills bool
	// getdents on a watched directory calls security_file_permission
	dirReads bool
}{
	compiler.MechSyscallTracepoint: {dupKills: false, dirReads: false},
	compiler.MechKprobe:            {dupKills: true, dirReads: true},
}

// TestMechanismsAgree runs the seed scenarios through every mechanism the
// kernel offers, forced with the hook-mechanism option, and checks that
// they give the same events for the same workload.
func TestMechanismsAgree(t *testing.T) {
	testutil.RequireRoot(t)
	features := testutil.Kernel(t).Map()
	for _, sc := range []struct {
		name string
		run  func(t *testing.T, h *harness) []string
	}{
		{"enforcement", enforcementScenario},
		{"file-monitoring", fileMonitoringScenario},
	} {
		t.Run(sc.name, func(t *testing.T) {
			got := map[string][]string{}
			for _, mech := range mechanisms {
				t.Run(mech.name, func(t *testing.T) {
					testutil.RequireFeature(t, mech.feature)
					got[mech.name] = sc.run(t, newHarness(t, mech.name, features))
				})
			}
			// Compared with repeats collapsed: a kprobe counts the kernel's
			// calls of the function, the mapping the syscalls, and some
			// syscalls call it twice (sendfile checks its input file twice
			// on 6.1).
			a, b := slices.Compact(got[compiler.MechSyscallTracepoint]), slices.Compact(got[compiler.MechKprobe])
			if a != nil && b != nil && !slices.Equal(a, b) {
				t.Errorf("the mechanisms disagree:\n%s:\n  %s\n%s:\n  %s", compiler.MechSyscallTracepoint,
					strings.Join(a, "\n  "), compiler.MechKprobe, strings.Join(b, "\n  "))
			}
		})
	}
}

// enforcementScenario: cat of the protected file dies of SIGKILL before it
// reads, another file is untouched, and a Sigkill event names the file.
func enforcementScenario(t *testing.T, h *harness) []string {
	writeFiles(t, h.dir, map[string]string{"tetragon": "secret", "other": "x"})
	target := filepath.Join(h.dir, "tetragon")
	// opened before the policy exists, so that only dup can install it
	helper := h.startDupHelper(t, target)
	h.load(t, enforcementPolicy)
	// where both mechanisms exist, the other one witnesses the open
	witness := ""
	if h.features[kernelfeatures.Kprobe] {
		witness = "fd-install"
		if h.mech == compiler.MechKprobe {
			witness = "open-exit"
			h.loadWith(t, openExitWitness, compiler.MechSyscallTracepoint)
		} else {
			h.loadWith(t, fdInstallWitness, compiler.MechKprobe)
		}
	}

	if out, killed := h.run(t, "cat", target); !killed || out != "" {
		t.Fatalf("cat %s: killed %v, output %q: want killed before reading", target, killed, out)
	}
	if out, killed := h.run(t, "cat", filepath.Join(h.dir, "other")); killed || out != "x" {
		t.Fatalf("cat other: killed %v, output %q: want untouched", killed, out)
	}
	// the kill lands after the open did its work: O_TRUNC has truncated
	if _, killed := h.run(t, "sh", "-c", ": > tetragon"); !killed {
		t.Fatalf("sh -c ': > tetragon' survived")
	}
	if fi, err := os.Stat(target); err != nil || fi.Size() != 0 {
		t.Fatalf("after the killed O_TRUNC open: %v %v, want the file truncated", fi, err)
	}
	if killed := helper.dup(t); killed != differences[h.mech].dupKills {
		t.Fatalf("dup of a descriptor of the protected file: killed %v, want %v", killed, differences[h.mech].dupKills)
	}

	var common, dups []string
	var kill, witnessed []event
	for _, e := range h.events(t) {
		switch {
		case e.policy == witness:
			if strings.HasPrefix(e.text, "cat ") {
				witnessed = append(witnessed, e)
			}
		case strings.HasPrefix(e.text, "dup-helper "):
			dups = append(dups, e.text)
		default:
			if strings.HasPrefix(e.text, "cat ") {
				kill = append(kill, e)
			}
			common = append(common, e.text)
		}
	}
	if witness != "" {
		whenKilled(t, h.mech, kill, witnessed)
	}
	if differences[h.mech].dupKills && (len(dups) != 1 || !strings.HasSuffix(dups[0], " file:$DIR/tetragon")) ||
		!differences[h.mech].dupKills && len(dups) != 0 {
		t.Fatalf("dup events %q", dups)
	}
	if len(common) != 2 || common[0] != "cat fd_install SIGKILL int:3 file:$DIR/tetragon" ||
		!strings.HasPrefix(common[1], "sh fd_install SIGKILL int:") || !strings.HasSuffix(common[1], " file:$DIR/tetragon") {
		t.Fatalf("events:\n  %s\nwant one Sigkill event for cat, then one for sh", strings.Join(common, "\n  "))
	}
	return common
}

// whenKilled checks where in cat's open the kill was sent, against the
// witness's record of the other mechanism's point: the kprobe kills in
// fd_install, before openat's sys_exit; the mapping kills at sys_exit,
// after fd_install.
func whenKilled(t *testing.T, mech string, kill, witness []event) {
	t.Helper()
	if len(kill) != 1 || len(witness) != 1 {
		t.Fatalf("kill events %v, witness events %v: want one each for cat", kill, witness)
	}
	k, w := int64(kill[0].ktime), int64(witness[0].ktime)
	if mech == compiler.MechKprobe && k >= w || mech == compiler.MechSyscallTracepoint && k <= w {
		t.Fatalf("%s: kill at %d, %s at %d: wrong order", mech, k, witness[0].text, w)
	}
	if k < w {
		t.Logf("%s: the kill is sent %v before %s", mech, time.Duration(w-k), witness[0].policy)
	} else {
		t.Logf("%s: the kill is sent %v after %s", mech, time.Duration(k-w), witness[0].policy)
	}
}

// fileMonitoringScenario: reads of a watched file by cat and a write by
// the shell make events with the path and the mask; reads of other files
// make no record, which the kernel-side counters prove.
func fileMonitoringScenario(t *testing.T, h *harness) []string {
	writeFiles(t, h.dir, map[string]string{"shadow": "x\n", "plain": "x\n", "secrets/key": "k", "etc/.keep": ""})
	h.load(t, fileMonitoringPolicy)

	before := h.stats(t)
	for range 20 {
		h.run(t, "cat", "plain")
	}
	mid := h.stats(t)
	if mid.Calls <= before.Calls || mid.Matched != before.Matched || mid.Posted != before.Posted {
		t.Fatalf("non-sensitive reads: counters before %+v after %+v: want calls to rise and nothing matched or posted", before, mid)
	}
	if evs := h.events(t); len(evs) != 0 {
		t.Fatalf("non-sensitive reads made events %v", evs)
	}

	h.run(t, "cat", "shadow")
	h.run(t, "sh", "-c", "echo foo >> etc/bar")
	h.run(t, "ls", "secrets")
	evs := h.events(t)
	if after := h.stats(t); after.Posted != mid.Posted+uint64(len(evs)) {
		t.Fatalf("records posted %d, want the %d events more than %d", after.Posted, len(evs), mid.Posted)
	}

	var common []string
	dirReads := 0
	for _, ev := range evs {
		e := ev.text
		if strings.HasPrefix(e, "ls ") {
			if e != "ls security_file_permission POST file:$DIR/secrets int:4" {
				t.Fatalf("ls event %q", e)
			}
			dirReads++
			continue
		}
		common = append(common, e)
	}
	if (dirReads > 0) != differences[h.mech].dirReads {
		t.Fatalf("%d read events for listing a watched directory, want some: %v", dirReads, differences[h.mech].dirReads)
	}
	// cat reads until end of file: each read is a security_file_permission call
	n := len(common)
	if n < 2 || common[n-1] != "sh security_file_permission POST file:$DIR/etc/bar int:2" {
		t.Fatalf("events:\n  %s\nwant reads of shadow by cat, then one write of etc/bar by sh", strings.Join(common, "\n  "))
	}
	for _, e := range common[:n-1] {
		if e != "cat security_file_permission POST file:$DIR/shadow int:4" {
			t.Fatalf("events:\n  %s\nwant reads of shadow by cat, then one write of etc/bar by sh", strings.Join(common, "\n  "))
		}
	}
	return common
}
