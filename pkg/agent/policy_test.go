package agent

import (
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/escape"
	"github.com/tetragon-lite/tetragon/pkg/eventbus"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// kprobeEvents subscribes to the policy events of processes running in dir.
func kprobeEvents(a *Agent, dir string) *eventbus.Subscription {
	return a.Bus().Subscribe(100000, func(ev *api.GetEventsResponse) bool {
		return ev.GetProcessKprobe().GetProcess().GetCwd() == dir
	})
}

func nextKprobe(t *testing.T, sub *eventbus.Subscription) *api.ProcessKprobe {
	t.Helper()
	select {
	case ev := <-sub.C():
		return ev.GetProcessKprobe()
	case <-time.After(5 * time.Second):
		t.Fatal("no policy event within 5s")
	}
	return nil
}

func filePath(a *api.KprobeArgument) string {
	if f := a.GetFileArg(); f != nil {
		return f.GetPath()
	}
	return a.GetPathArg().GetPath()
}

func TestEnforcementPolicyKillsOnOpen(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	target, other := filepath.Join(dir, "tetragon"), filepath.Join(dir, "other")
	for _, f := range []string{target, other} {
		if err := os.WriteFile(f, []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := a.Hooks().Load("enforcement", []compiler.Decl{{
		Call: "fd_install",
		Args: []tp.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "file"}},
		Selectors: []tp.Selector{{
			MatchArgs:    []tp.ArgSelector{{Index: 1, Operator: "Equal", Values: []string{target}}},
			MatchActions: []tp.ActionSelector{{Action: "Sigkill"}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sub := kprobeEvents(a, dir)

	cmd := exec.Command("cat", target)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if !testutil.KilledBySIGKILL(err) || len(out) != 0 {
		t.Fatalf("cat %s: %v, output %q: want killed before reading", target, err, out)
	}
	cmd = exec.Command("cat", other)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "secret" {
		t.Fatalf("cat %s: %v %q: want untouched", other, err, out)
	}
	k := nextKprobe(t, sub)
	if k.GetFunctionName() != "fd_install" || k.GetAction() != api.KprobeAction_KPROBE_ACTION_SIGKILL ||
		k.GetPolicyName() != "enforcement" || len(k.GetArgs()) != 2 || filePath(k.GetArgs()[1]) != target ||
		!strings.HasSuffix(k.GetProcess().GetBinary(), "/cat") && !strings.HasSuffix(k.GetProcess().GetBinary(), "/busybox") ||
		k.GetMechanism() != wantMechanism(t) {
		t.Fatalf("event: %v", k)
	}
	if k.GetProcess().GetArguments() != target || k.GetParent() == nil {
		t.Fatalf("event process %v parent %v", k.GetProcess(), k.GetParent())
	}
	select {
	case ev := <-sub.C():
		t.Fatalf("unexpected second event: %v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestFileMonitoringReadWriteSplit(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	secret := filepath.Join(dir, "shadow")
	watched := filepath.Join(dir, "etc") + "/"
	plain := filepath.Join(dir, "plain")
	os.Mkdir(watched, 0o755)
	for _, f := range []string{secret, plain} {
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := a.Hooks().Load("file-monitoring", []compiler.Decl{{
		Call: "security_file_permission",
		Args: []tp.ArgSpec{{Index: 0, Type: "file"}, {Index: 1, Type: "int"}},
		Selectors: []tp.Selector{
			{MatchArgs: []tp.ArgSelector{
				{Index: 0, Operator: "Equal", Values: []string{secret}},
				{Index: 1, Operator: "Mask", Values: []string{"4"}, IntValues: []int64{4}},
			}},
			{MatchArgs: []tp.ArgSelector{
				{Index: 0, Operator: "Prefix", Values: []string{watched}},
				{Index: 1, Operator: "Mask", Values: []string{"2"}, IntValues: []int64{2}},
			}},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sub := kprobeEvents(a, dir)
	before := a.Hooks().Status()[0].Hooks[0].Stats

	// non-sensitive reads: many calls, no match, no record
	for i := 0; i < 20; i++ {
		run(t, dir, "cat", plain)
	}
	mid := a.Hooks().Status()[0].Hooks[0].Stats
	if mid.Calls <= before.Calls || mid.Matched != before.Matched || mid.Posted != before.Posted {
		t.Fatalf("non-sensitive reads: counters before %+v after %+v: want calls to rise and nothing matched", before, mid)
	}

	// cat reads twice (the data, then end of file): each read is a
	// security_file_permission call, as with a kprobe
	run(t, dir, "cat", secret)
	run(t, dir, "sh", "-c", "echo foo >> "+watched+"bar")
	reads := 0
	for {
		k := nextKprobe(t, sub)
		path, mask := filePath(k.GetArgs()[0]), k.GetArgs()[1].GetIntArg()
		if mask == 4 && path == secret && strings.Contains(k.GetProcess().GetArguments(), secret) {
			reads++
			continue
		}
		if mask != 2 || path != watched+"bar" || reads == 0 {
			t.Fatalf("after %d reads of %s, event: %v", reads, secret, k)
		}
		break
	}
	after := a.Hooks().Status()[0].Hooks[0].Stats
	if after.Posted != mid.Posted+uint64(reads)+1 {
		t.Fatalf("records posted %d, want exactly %d more than %d", after.Posted, reads+1, mid.Posted)
	}
}

// TestNonUTF8FilePath opens, with cat under a policy, a file whose name is
// not UTF-8: the path argument keeps every byte, escaped (package escape).
func TestNonUTF8FilePath(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	target := filepath.Join(dir, "caf\xe9\\x41")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := a.Hooks().Load("non-utf8", []compiler.Decl{{
		Call: "fd_install",
		Args: []tp.ArgSpec{{Index: 0, Type: "int"}, {Index: 1, Type: "file"}},
		Selectors: []tp.Selector{{
			MatchArgs: []tp.ArgSelector{{Index: 1, Operator: "Prefix", Values: []string{dir + "/caf"}}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sub := kprobeEvents(a, dir)
	run(t, dir, "cat", target)
	k := nextKprobe(t, sub)
	want := dir + `/caf\xe9\\x41`
	if got := filePath(k.GetArgs()[1]); got != want {
		t.Errorf("path argument %q, want %q", got, want)
	}
	if got := k.GetProcess().GetArguments(); got != want {
		t.Errorf("cat's arguments %q, want %q", got, want)
	}
	if b, err := escape.Unescape(filePath(k.GetArgs()[1])); err != nil || string(b) != target {
		t.Errorf("unescaped path %q, %v: want %q", b, err, target)
	}
}

func TestPolicyLoadErrorsLeaveNothing(t *testing.T) {
	a := startAgent(t)
	cases := map[string]compiler.Decl{
		// neither a kernel function nor mapped, on every kernel
		"unknown function": {Call: "tetragon_no_such_function", Args: []tp.ArgSpec{{Index: 0, Type: "int"}}},
		"override":         {Call: "fd_install", Args: []tp.ArgSpec{{Index: 1, Type: "file"}}, Selectors: []tp.Selector{{MatchActions: []tp.ActionSelector{{Action: "Override", ArgError: -1}}}}},
		"type mismatch":    {Call: "fd_install", Args: []tp.ArgSpec{{Index: 0, Type: "file"}}},
		"long value":       {Call: "fd_install", Args: []tp.ArgSpec{{Index: 1, Type: "file"}}, Selectors: []tp.Selector{{MatchArgs: []tp.ArgSelector{{Index: 1, Operator: "Prefix", Values: []string{strings.Repeat("a", 300)}}}}}},
	}
	for name, d := range cases {
		good := compiler.Decl{Call: "security_file_open", Args: []tp.ArgSpec{{Index: 0, Type: "file"}}}
		if err := a.Hooks().Load(name, []compiler.Decl{good, d}); err == nil {
			t.Errorf("%s: loaded", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if st := a.Hooks().Status(); len(st) != 0 {
		t.Fatalf("failed loads left %v", st)
	}
}

// wantMechanism is the mechanism the agent picks for fd_install on this
// kernel: a kprobe where there are kprobes, else the syscall mapping.
func wantMechanism(t *testing.T) string {
	if testutil.Kernel(t).Has("kprobe") {
		return compiler.MechKprobe
	}
	return compiler.MechSyscallTracepoint
}
