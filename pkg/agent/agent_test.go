package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/config"
	"github.com/tetragon-lite/tetragon/pkg/escape"
	"github.com/tetragon-lite/tetragon/pkg/eventbus"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// testConfig is the default configuration with a private socket.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Config{
		ServerAddress: filepath.Join(t.TempDir(), "tetragon.sock"),
		LogLevel:      "info",
		LogFormat:     "text",
		// its own: tests of other packages run agents at the same time,
		// and one --bpf-dir takes one agent
		BPFDir:           fmt.Sprintf("tetragon-test-%d", time.Now().UnixNano()),
		ProcRoot:         "/proc",
		EventQueueSize:   65536,
		SubscriberQueue:  100000,
		ProcessCacheSize: 65536,
	}
	loopbackActions(t, &cfg)
	return cfg
}

// startAgent runs an agent for the test's duration.
func startAgent(t *testing.T) *Agent {
	t.Helper()
	testutil.RequireRoot(t)
	return startAgentWith(t, testConfig(t))
}

// startAgentWith runs an agent with cfg for the test's duration.
func startAgentWith(t *testing.T, cfg config.Config) *Agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	a, err := Start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("starting agent: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := a.Wait(); err != nil {
			t.Errorf("agent stopped with: %v", err)
		}
	})
	return a
}

// workdir makes a directory whose path marks the test's own processes: the
// workloads run there, so their events carry it as cwd.
func workdir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "tetragon-wl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	d, err = filepath.EvalSymlinks(d)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func procOf(ev *api.GetEventsResponse) *api.Process {
	if e := ev.GetProcessExec(); e != nil {
		return e.GetProcess()
	}
	return ev.GetProcessExit().GetProcess()
}

// subscribe returns the events of processes running in dir.
func subscribe(a *Agent, dir string) *eventbus.Subscription {
	return a.Bus().Subscribe(100000, func(ev *api.GetEventsResponse) bool {
		return procOf(ev).GetCwd() == dir
	})
}

// collect reads events until done says so or the timeout passes.
func collect(t *testing.T, sub *eventbus.Subscription, timeout time.Duration, done func([]*api.GetEventsResponse) bool) []*api.GetEventsResponse {
	t.Helper()
	var evs []*api.GetEventsResponse
	deadline := time.After(timeout)
	for !done(evs) {
		select {
		case ev := <-sub.C():
			evs = append(evs, ev.GetEventsResponse)
		case <-deadline:
			t.Fatalf("timed out after %v with %d events:\n%s", timeout, len(evs), dump(evs))
		}
	}
	return evs
}

func dump(evs []*api.GetEventsResponse) string {
	var b strings.Builder
	for _, ev := range evs {
		p := procOf(ev)
		kind := "exec"
		if ev.GetProcessExit() != nil {
			kind = fmt.Sprintf("exit status=%d signal=%q", ev.GetProcessExit().GetStatus(), ev.GetProcessExit().GetSignal())
		}
		fmt.Fprintf(&b, "  %s pid=%d %s %q parent=%s\n", kind, p.GetPid().GetValue(), p.GetBinary(), p.GetArguments(), p.GetParentExecId())
	}
	return b.String()
}

func countExits(evs []*api.GetEventsResponse) int {
	n := 0
	for _, ev := range evs {
		if ev.GetProcessExit() != nil {
			n++
		}
	}
	return n
}

func realPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("looking up %s: %v", name, err)
	}
	p, err = filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, dir string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running %s: %v: %s", name, err, out)
		}
	}
	return cmd
}

func TestCatExecAndExitWithParent(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)
	sh, cat := realPath(t, "sh"), realPath(t, "cat")

	cmd := run(t, dir, "sh", "-c", "cat /etc/hostname; exit 0")
	shPid := uint32(cmd.Process.Pid)
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= 2 })

	if len(evs) != 4 {
		t.Fatalf("want exec sh, exec cat, exit cat, exit sh; got:\n%s", dump(evs))
	}
	shExec, catExec := evs[0].GetProcessExec(), evs[1].GetProcessExec()
	catExit, shExit := evs[2].GetProcessExit(), evs[3].GetProcessExit()
	if shExec == nil || catExec == nil || catExit == nil || shExit == nil {
		t.Fatalf("wrong order:\n%s", dump(evs))
	}
	sp, cp := shExec.GetProcess(), catExec.GetProcess()
	if sp.GetBinary() != sh || sp.GetArguments() != `-c "cat /etc/hostname; exit 0"` || sp.GetPid().GetValue() != shPid {
		t.Errorf("sh exec: binary %q args %q pid %d, want %q, quoted script, %d", sp.GetBinary(), sp.GetArguments(), sp.GetPid().GetValue(), sh, shPid)
	}
	if cp.GetBinary() != cat || cp.GetArguments() != "/etc/hostname" || cp.GetCwd() != dir {
		t.Errorf("cat exec: binary %q args %q cwd %q", cp.GetBinary(), cp.GetArguments(), cp.GetCwd())
	}
	if cp.GetParentExecId() != sp.GetExecId() || catExec.GetParent().GetExecId() != sp.GetExecId() {
		t.Errorf("cat's parent is %q / %q, want sh's exec id %q", cp.GetParentExecId(), catExec.GetParent().GetExecId(), sp.GetExecId())
	}
	if want := uint32(os.Getpid()); shExec.GetParent().GetPid().GetValue() != want {
		t.Errorf("sh's parent pid %d, want the test's %d", shExec.GetParent().GetPid().GetValue(), want)
	}
	if catExit.GetProcess().GetExecId() != cp.GetExecId() || catExit.GetStatus() != 0 || catExit.GetSignal() != "" {
		t.Errorf("cat exit: %v", catExit)
	}
	if shExit.GetProcess().GetExecId() != sp.GetExecId() {
		t.Errorf("sh exit is for %q, want %q", shExit.GetProcess().GetExecId(), sp.GetExecId())
	}
	if cp.GetUid().GetValue() != 0 || cp.GetNs().GetPid().GetIsHost() != true || cp.GetStartTime() == nil {
		t.Errorf("cat process details: uid %v ns %v start %v", cp.GetUid(), cp.GetNs(), cp.GetStartTime())
	}
	if !strings.Contains(cp.GetFlags(), "execve") {
		t.Errorf("flags %q lack execve", cp.GetFlags())
	}
	found := false
	for _, c := range cp.GetCap().GetEffective() {
		found = found || c == api.CapabilitiesType_CAP_SYS_ADMIN
	}
	if !found {
		t.Errorf("root's cat lacks CAP_SYS_ADMIN in %v", cp.GetCap().GetEffective())
	}
}

func TestExitCodesAndSignals(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)

	run(t, dir, "sh", "-c", "exit 3")
	sleep := exec.Command("sleep", "30")
	sleep.Dir = dir
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool {
		for _, ev := range evs {
			if ev.GetProcessExec().GetProcess().GetPid().GetValue() == uint32(sleep.Process.Pid) {
				return true
			}
		}
		return false
	})
	sleep.Process.Signal(syscall.SIGKILL)
	sleep.Wait()
	evs = append(evs, collect(t, sub, 10*time.Second, func(more []*api.GetEventsResponse) bool { return countExits(append(evs, more...)) >= 2 })...)

	var codes, signals []string
	for _, ev := range evs {
		if x := ev.GetProcessExit(); x != nil {
			codes = append(codes, fmt.Sprint(x.GetStatus()))
			signals = append(signals, x.GetSignal())
		}
	}
	if strings.Join(codes, ",") != "3,0" || strings.Join(signals, ",") != ",SIGKILL" {
		t.Fatalf("exit statuses %v signals %v, want [3 0] [\"\" SIGKILL]:\n%s", codes, signals, dump(evs))
	}
}

func TestNestedChainParents(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)

	// sh -> (subshell, fork only) -> sh -> cat: parent links follow the
	// fork through the subshell
	run(t, dir, "sh", "-c", `(sh -c "cat /etc/hostname >/dev/null; true"; true); true`)
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= 4 })
	execs := map[string]*api.Process{}
	var order []*api.Process
	for _, ev := range evs {
		if e := ev.GetProcessExec(); e != nil {
			execs[e.GetProcess().GetExecId()] = e.GetProcess()
			order = append(order, e.GetProcess())
		}
	}
	if len(order) != 3 {
		t.Fatalf("want 3 execs (sh, sh, cat):\n%s", dump(evs))
	}
	outer, inner, cat := order[0], order[1], order[2]
	if !strings.HasSuffix(cat.GetBinary(), filepath.Base(realPath(t, "cat"))) {
		t.Fatalf("third exec is %q", cat.GetBinary())
	}
	if cat.GetParentExecId() != inner.GetExecId() {
		t.Errorf("cat's parent %q, want inner sh %q", cat.GetParentExecId(), inner.GetExecId())
	}
	// inner sh's parent is the subshell (a fork of outer sh, with its binary)
	var sub1 *api.Process
	for _, ev := range evs {
		if x := ev.GetProcessExit(); x != nil && x.GetProcess().GetExecId() == inner.GetParentExecId() {
			sub1 = x.GetProcess()
		}
	}
	if sub1 == nil {
		t.Fatalf("no exit for inner sh's parent %q:\n%s", inner.GetParentExecId(), dump(evs))
	}
	if sub1.GetParentExecId() != outer.GetExecId() || sub1.GetBinary() != outer.GetBinary() || !strings.Contains(sub1.GetFlags(), "clone") {
		t.Errorf("subshell %v: want a clone of outer sh %q", sub1, outer.GetExecId())
	}
}

func TestHostileArguments(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)

	long := strings.Repeat("A", 100000)
	run(t, dir, "true", long)
	run(t, dir, "true", "caf\xe9", "", "x y")
	run(t, dir, "true")
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= 3 })
	var execs []*api.Process
	for _, ev := range evs {
		if e := ev.GetProcessExec(); e != nil {
			execs = append(execs, e.GetProcess())
		}
	}
	if len(execs) != 3 {
		t.Fatalf("want 3 execs:\n%s", dump(evs))
	}
	if args := execs[0].GetArguments(); len(args) < 4000 || len(args) >= 8192 || strings.Trim(args, "A") != "" ||
		!strings.Contains(execs[0].GetFlags(), "truncArgs") {
		t.Errorf("long argv: %d bytes, flags %q: want truncated to the 8 KiB limit with truncArgs", len(args), execs[0].GetFlags())
	}
	// bytes that are not UTF-8 escaped, not lost (package escape)
	if got := execs[1].GetArguments(); got != `caf\xe9 "" "x y"` {
		t.Errorf("non-UTF-8 / empty / spaced args rendered %q", got)
	}
	if got := execs[2].GetArguments(); got != "" {
		t.Errorf("no args rendered %q", got)
	}
}

func TestScriptThroughShebang(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)
	script := filepath.Join(dir, "hello.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, dir, script, "arg1")
	// exec of a missing file fails in the kernel before any exec event
	exec.Command(filepath.Join(dir, "missing")).Run()
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= 1 })
	e := evs[0].GetProcessExec().GetProcess()
	if e.GetBinary() != realPath(t, "sh") || e.GetArguments() != script+" arg1" {
		t.Errorf("script exec: binary %q args %q, want the interpreter with the script as first argument", e.GetBinary(), e.GetArguments())
	}
	if st := evs[1].GetProcessExit().GetStatus(); st != 7 {
		t.Errorf("script exit status %d, want 7", st)
	}
}

// TestThreadsMakeNoEvents runs a process that starts threads (this test
// binary, re-executed: the Go runtime always starts several) and checks it
// produces exactly one exec and one exit.
func TestThreadsMakeNoEvents(t *testing.T) {
	if os.Getenv("TETRAGON_TEST_THREADS") == "1" {
		done := make(chan bool)
		for i := 0; i < 8; i++ {
			go func() { time.Sleep(50 * time.Millisecond); done <- true }()
		}
		for i := 0; i < 8; i++ {
			<-done
		}
		os.Exit(0)
	}
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestThreadsMakeNoEvents$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TETRAGON_TEST_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("threaded child: %v: %s", err, out)
	}
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= 1 })
	// give stray thread exits a moment to show up
	time.Sleep(300 * time.Millisecond)
	for len(sub.C()) > 0 {
		evs = append(evs, (<-sub.C()).GetEventsResponse)
	}
	if len(evs) != 2 || evs[0].GetProcessExec() == nil || evs[1].GetProcessExit() == nil {
		t.Fatalf("want exactly one exec and one exit:\n%s", dump(evs))
	}
}

func TestProcessesRunningBeforeStart(t *testing.T) {
	testutil.RequireRoot(t)
	dir := workdir(t)
	// a shell that starts before the agent and execs cat after it; the
	// trailing ":" keeps busybox sh from exec'ing its last command in place
	cmd := exec.Command("sh", "-c", "read x; cat /etc/hostname >/dev/null; :")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t)
	sub := subscribe(a, dir)
	stdin.Write([]byte("go\n"))
	stdin.Close()
	cmd.Wait()
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= 2 })
	cat := evs[0].GetProcessExec()
	if cat == nil {
		t.Fatalf("first event is not cat's exec:\n%s", dump(evs))
	}
	parent := cat.GetParent()
	if parent.GetPid().GetValue() != uint32(cmd.Process.Pid) || !strings.Contains(parent.GetFlags(), "procFS") ||
		parent.GetArguments() != `-c "read x; cat /etc/hostname >/dev/null; :"` || parent.GetBinary() != realPath(t, "sh") {
		t.Fatalf("cat's parent from procfs: %v", parent)
	}
	if parent.GetParentExecId() == "" {
		t.Errorf("procfs process has no parent exec id")
	}
}

func TestBurstEveryExecHasItsExit(t *testing.T) {
	if testing.Short() {
		t.Skip("burst of 10,000 processes skipped in -short mode")
	}
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)
	base := a.Cache().Stats().Size
	n := 10000
	if lane := os.Getenv("TETRAGON_LANE"); lane != "" && lane != "host" {
		n = 2000 // each exec costs milliseconds under emulation
	}
	run(t, dir, "sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done", n))
	evs := collect(t, sub, 3*time.Minute, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= n+1 })
	open := map[string]bool{}
	execs := 0
	for _, ev := range evs {
		if e := ev.GetProcessExec(); e != nil {
			open[e.GetProcess().GetExecId()] = true
			execs++
		} else if x := ev.GetProcessExit(); x != nil {
			if !open[x.GetProcess().GetExecId()] {
				t.Fatalf("exit without exec: %v", x.GetProcess())
			}
			delete(open, x.GetProcess().GetExecId())
		}
	}
	if execs != n+1 || len(open) != 0 {
		t.Fatalf("%d execs (want %d), %d without exit", execs, n+1, len(open))
	}
	st := a.Status()
	if l := st.GetLosses(); l.GetKernelRingbuf()+l.GetQueueOverflow()+l.GetSubscriberDrops()+l.GetDecodeErrors() != 0 {
		t.Fatalf("losses: %v", l)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.Cache().Stats().Size > base+50 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if size := a.Cache().Stats().Size; size > base+50 {
		t.Fatalf("process cache holds %d entries after the burst, baseline %d", size, base)
	}
}

// TestMemfdExec runs a binary from a memfd (fileless execution, as runc
// init does): its file sits on the kernel's internal shmem mount, outside
// any mount tree, and the exec event must name it as /proc/PID/exe does,
// "/memfd:NAME (deleted)", not "/".
func TestMemfdExec(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)

	bin, err := os.ReadFile(realPath(t, "sleep"))
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.MemfdCreate("tetragon-fileless", 0)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	mf := os.NewFile(uintptr(fd), "memfd")
	defer mf.Close()
	if _, err := mf.Write(bin); err != nil {
		t.Fatal(err)
	}
	// the child execs its own fd 3, the memfd
	cmd := exec.Command("/proc/self/fd/3", "5")
	cmd.Args[0] = "sleep" // busybox picks its applet by argv[0]
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{mf}
	if err := cmd.Start(); err != nil {
		t.Fatalf("exec from memfd: %v", err)
	}
	// read while it runs; until the kernel has switched the child to the
	// new program, exe may still name this test binary
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var exe string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		exe, err = os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		if err != nil || exe != self || time.Now().After(deadline) {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/memfd:tetragon-fileless (deleted)"; exe != want {
		t.Fatalf("kernel names the memfd binary %q, want %q", exe, want)
	}
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= 1 })
	e := evs[0].GetProcessExec().GetProcess()
	if e.GetBinary() != exe || e.GetArguments() != "5" {
		t.Errorf("memfd exec: binary %q args %q, want %q (as /proc/%d/exe) and \"5\"", e.GetBinary(), e.GetArguments(), exe, cmd.Process.Pid)
	}
}

// TestNonUTF8BinaryAndArguments runs a binary whose path is not UTF-8 with
// arguments that are not either: the event keeps every byte, escaped, and
// unescaping gives the kernel's bytes back.
func TestNonUTF8BinaryAndArguments(t *testing.T) {
	a := startAgent(t)
	dir := workdir(t)
	sub := subscribe(a, dir)

	bin, err := os.ReadFile(realPath(t, "true"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tr\xffue")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	arg := "a\xfe\\x41"
	run(t, dir, path, arg)
	evs := collect(t, sub, 10*time.Second, func(evs []*api.GetEventsResponse) bool { return countExits(evs) >= 1 })
	e := evs[0].GetProcessExec().GetProcess()
	if want := dir + `/tr\xffue`; e.GetBinary() != want {
		t.Errorf("binary %q, want %q", e.GetBinary(), want)
	}
	if want := `a\xfe\\x41`; e.GetArguments() != want {
		t.Errorf("arguments %q, want %q", e.GetArguments(), want)
	}
	if b, err := escape.Unescape(e.GetBinary()); err != nil || string(b) != path {
		t.Errorf("unescaped binary %q, %v: want %q", b, err, path)
	}
	if b, err := escape.Unescape(e.GetArguments()); err != nil || string(b) != arg {
		t.Errorf("unescaped arguments %q, %v: want %q", b, err, arg)
	}
}
