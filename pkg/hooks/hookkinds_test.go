package hooks

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// Helpers the test binary becomes, so that a test can kill a process of
// its own without touching the rest of the host.
const (
	// syscallHelperEnv: make system call number $value, which no kernel
	// has, so that only this process ever enters it.
	syscallHelperEnv = "TETRAGON_HOOKS_SYSCALL_HELPER"
	// uprobeHelperEnv: call uprobeTarget with $value as its fourth argument.
	uprobeHelperEnv = "TETRAGON_HOOKS_UPROBE_HELPER"
)

// helperMain runs the helper the environment asks for; ok is false when it
// asks for none.
func helperMain() (code int, ok bool) {
	if v := os.Getenv(syscallHelperEnv); v != "" {
		nr, _ := strconv.Atoi(v)
		_, _, errno := syscall.RawSyscall(uintptr(nr), 0, 0, 0)
		fmt.Println("survived", errno)
		return 0, true
	}
	if v := os.Getenv(capsetHelperEnv); v != "" {
		return capsetHelper(v), true
	}
	if code, ok := testutil.FileHelper(); ok {
		return code, true
	}
	if v := os.Getenv(writeHelperEnv); v != "" {
		return writeHelper(v), true
	}
	if v := os.Getenv(readHelperEnv); v != "" {
		return readHelper(v), true
	}
	if code, ok := pipeHelper(); ok {
		return code, true
	}
	if code, ok := ttyHelper(); ok {
		return code, true
	}
	if code, ok := moduleHelper(); ok {
		return code, true
	}
	if code, ok := connectHelper(); ok {
		return code, true
	}
	if code, ok := changeHelper(); ok {
		return code, true
	}
	if v := os.Getenv(uprobeHelperEnv); v != "" {
		n, _ := strconv.Atoi(v)
		fmt.Println("survived", uprobeTarget(1, 2, 3, n))
		return 0, true
	}
	return 0, false
}

// uprobeTarget is the function the uprobe tests probe. Go passes integer
// arguments in RAX, RBX, RCX, RDI, ...: the fourth one is in RDI, the
// register the C calling convention (which uprobes: arguments follow)
// passes the first argument in. So index 0 of the policy reads d.
//
//go:noinline
func uprobeTarget(a, b, c, d int) int { return a + b + c + d }

// unusedSyscalls are system call numbers far above any kernel's table.
const (
	killedSyscall   = 4042
	survivedSyscall = 4043
)

// runHelper runs the test binary as helper env=value and reports whether
// SIGKILL ended it.
func (h *harness) runHelper(t *testing.T, env, value string) (killed bool) {
	t.Helper()
	out, err := h.helperOutput(t, env, value)
	if testutil.KilledBySIGKILL(err) {
		return true
	}
	if err != nil || !strings.HasPrefix(out, "survived") {
		t.Fatalf("helper %s=%s: %v: %q", env, value, err, out)
	}
	return false
}

// helperOutput runs the test binary as helper env=value, noting its pid so
// that its events are kept, and returns its output and how it ended.
func (h *harness) helperOutput(t *testing.T, env, value string) (string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), env+"="+value)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(cmd.Process.Pid)] = "helper"
	h.mu.Unlock()
	err = cmd.Wait()
	return out.String(), err
}

const rawSyscallsPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "raw-syscalls"
spec:
  tracepoints:
  - subsystem: "raw_syscalls"
    event: "sys_enter"
    %[3]s
    args:
    - index: %[4]d
      type: "int64"
    selectors:
    - matchArgs:
      - index: %[4]d
        operator: "Equal"
        values:
        - "4042"
      matchActions:
      - action: Sigkill
    - matchArgs:
      - index: %[4]d
        operator: "Equal"
        values:
        - "4043"
`

const openatPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "openat-tracepoint"
spec:
  tracepoints:
  - subsystem: "syscalls"
    event: "sys_enter_openat"
    args:
    - index: 6
      type: "string"
    - index: 7
      type: "int32"
    selectors:
    - matchArgs:
      - index: 6
        operator: "Prefix"
        values:
        - "%[2]s/tetragon"
      matchActions:
      - action: Sigkill
    - matchArgs:
      - index: 6
        operator: "Postfix"
        values:
        - "/watched"
`

const execTracepointPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "exec-tracepoint"
spec:
  tracepoints:
  - subsystem: "sched"
    event: "sched_process_exec"
    args:
    - index: 4
      type: "string"
    selectors:
    - matchArgs:
      - index: 4
        operator: "Equal"
        values:
        - "%[3]s"
`

const uprobePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "uprobe"
spec:
  uprobes:
  - path: "%[3]s"
    offsets:
    - %[4]d
    args:
    - index: 0
      type: "int64"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "4242"
      matchActions:
      - action: Sigkill
    - matchArgs:
      - index: 0
        operator: "GreaterThan"
        values:
        - "100"
`

func wantEvents(t *testing.T, got []event, want ...string) {
	t.Helper()
	var texts []string
	for _, e := range got {
		texts = append(texts, e.text)
	}
	if !slices.Equal(texts, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
}

// raw_syscalls/sys_enter with matchArgs on the syscall id (format field 4,
// or TP_PROTO argument 1 read as a raw tracepoint): only the process that
// makes the listed system call is killed.
func TestTracepointRawSyscalls(t *testing.T) {
	testutil.RequireRoot(t)
	features := testutil.Kernel(t).Map()
	for _, tc := range []struct {
		name, raw, mech string
		index           int
	}{
		{"tracepoint", "", compiler.MechTracepoint, 4},
		{"raw tracepoint", "raw: true", compiler.MechRawTracepoint, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.RequireFeature(t, map[string]string{compiler.MechTracepoint: "tracepoint", compiler.MechRawTracepoint: "raw_tracepoint"}[tc.mech])
			h := newHarness(t, tc.mech, features)
			h.loadWith(t, rawSyscallsPolicy, tc.mech, tc.raw, tc.index)
			if !h.runHelper(t, syscallHelperEnv, strconv.Itoa(killedSyscall)) {
				t.Fatal("system call 4042 was not killed")
			}
			if h.runHelper(t, syscallHelperEnv, strconv.Itoa(survivedSyscall)) {
				t.Fatal("system call 4043 was killed")
			}
			wantEvents(t, h.events(t),
				"helper raw_syscalls/sys_enter SIGKILL long:4042",
				"helper raw_syscalls/sys_enter POST long:4043")
		})
	}
}

// syscalls/sys_enter_openat with a filename prefix: the char * field is
// read from the caller's memory.
func TestTracepointOpenatPrefix(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	h := newHarness(t, compiler.MechTracepoint, testutil.Kernel(t).Map())
	writeFiles(t, h.dir, map[string]string{"tetragon": "secret", "watched": "w", "other": "x"})
	h.loadWith(t, openatPolicy, compiler.MechTracepoint)
	if _, killed := h.run(t, "cat", filepath.Join(h.dir, "tetragon")); !killed {
		t.Fatal("cat of the protected file was not killed")
	}
	if out, killed := h.run(t, "cat", filepath.Join(h.dir, "watched")); killed || out != "w" {
		t.Fatalf("cat watched: %q killed=%v", out, killed)
	}
	if out, killed := h.run(t, "cat", filepath.Join(h.dir, "other")); killed || out != "x" {
		t.Fatalf("cat other: %q killed=%v", out, killed)
	}
	// O_RDONLY|O_CLOEXEC? cat opens with O_RDONLY: flags 0 on glibc and
	// busybox alike
	wantEvents(t, h.events(t),
		"cat syscalls/sys_enter_openat SIGKILL string:$DIR/tetragon int:0",
		"cat syscalls/sys_enter_openat POST string:$DIR/watched int:0")
}

// sched/sched_process_exec's filename is a __data_loc char[] field: the
// string sits in the record, located by the field's value.
func TestTracepointDataLoc(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, compiler.MechTracepoint, testutil.Kernel(t).Map())
	h.loadWith(t, execTracepointPolicy, compiler.MechTracepoint, bin)
	h.run(t, bin)
	h.run(t, "cat", "/dev/null")
	wantEvents(t, h.events(t), bin+" sched/sched_process_exec POST string:"+bin)
}

// funcOffset returns the file offset of function fn's code in executable
// path: where a uprobe on fn goes. go test strips its binaries' symbol
// tables, so the symbol cannot be looked up; the function's address can.
// (Symbols are tested on the agent's binaries, cmd/tetragon.)
func funcOffset(t *testing.T, path string, fn any) uint64 {
	t.Helper()
	addr := uint64(reflect.ValueOf(fn).Pointer())
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= addr && addr < p.Vaddr+p.Memsz {
			return addr - p.Vaddr + p.Off
		}
	}
	t.Fatalf("%#x is in no executable segment of %s (a position-independent test binary?)", addr, path)
	return 0
}

// A uprobe on a function of this test binary, with an argument read from
// its register.
func TestUprobeSigkill(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "uprobe")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	off := funcOffset(t, self, uprobeTarget)
	h := newHarness(t, compiler.MechUprobe, testutil.Kernel(t).Map())
	h.loadWith(t, uprobePolicy, compiler.MechUprobe, self, off)
	if !h.runHelper(t, uprobeHelperEnv, "4242") {
		t.Fatal("the call with 4242 was not killed")
	}
	if h.runHelper(t, uprobeHelperEnv, "7") {
		t.Fatal("the call with 7 was killed")
	}
	if h.runHelper(t, uprobeHelperEnv, "500") {
		t.Fatal("the call with 500 was killed")
	}
	sym := fmt.Sprintf("%#x", off)
	wantEvents(t, h.events(t),
		"helper "+sym+" SIGKILL long:4242",
		"helper "+sym+" POST long:500")
}

const lsmPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "lsm-file-open"
spec:
  lsmhooks:
  - hook: "file_open"
    args:
    - index: 0
      type: "file"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[2]s/denied"
      matchActions:
      - action: Override
        argError: -1
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[2]s/tetragon"
      matchActions:
      - action: Sigkill
`

// lsmhooks: a BPF LSM program on file_open denies one file (Override),
// kills the opener of another (Sigkill), and lets the rest through.
func TestLSMHook(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "bpf_lsm")
	h := newHarness(t, compiler.MechLSM, testutil.Kernel(t).Map())
	writeFiles(t, h.dir, map[string]string{"denied": "d", "tetragon": "secret", "other": "x"})
	h.loadWith(t, lsmPolicy, compiler.MechLSM)
	if out, _ := h.runFails(t, "cat", filepath.Join(h.dir, "denied")); !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("cat of the denied file: %q, want EPERM", out)
	}
	if _, killed := h.run(t, "cat", filepath.Join(h.dir, "tetragon")); !killed {
		t.Fatal("cat of the protected file was not killed")
	}
	if out, killed := h.run(t, "cat", filepath.Join(h.dir, "other")); killed || out != "x" {
		t.Fatalf("cat other: %q killed=%v", out, killed)
	}
	wantEvents(t, h.events(t),
		"cat file_open OVERRIDE file:$DIR/denied",
		"cat file_open SIGKILL file:$DIR/tetragon")
}

// A hook kind the kernel cannot serve is a load error that names what the
// kernel lacks, and leaves nothing loaded.
func TestHookKindMissingFeature(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		policy, missing string
		extra           []any
	}{
		{lsmPolicy, "bpf_lsm", nil},
		{openatPolicy, "tracepoint", nil},
		{uprobePolicy, "uprobe", []any{"/bin/sh", 4096}},
	} {
		h := newHarness(t, "", map[string]bool{})
		err := h.m.LoadPolicy(h.parse(t, tc.policy, "", tc.extra...))
		if err == nil || !strings.Contains(err.Error(), "(probe feature "+tc.missing+")") {
			t.Errorf("error %v, want it to name probe feature %s", err, tc.missing)
		}
		if st := h.m.Status(); len(st) != 0 {
			t.Errorf("the refused policy left %+v", st)
		}
	}
}

// The shipped tracepoint example reports a ptrace attach, with the
// request and target pid, and nothing for other ptrace requests.
func TestPtraceAttachExample(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	h := newHarness(t, compiler.MechTracepoint, testutil.Kernel(t).Map())
	ps, err := tp.ParseFile("../../policies/examples/ptrace-attach.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadPolicy(ps[0]); err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	pid := sleep.Process.Pid
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	// ptrace requests are per thread: attach, wait and detach on one
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := syscall.PtraceAttach(pid); err != nil {
			t.Fatal(err)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, syscall.WALL, nil); err != nil {
			t.Fatal(err)
		}
		if err := syscall.PtraceDetach(pid); err != nil {
			t.Fatal(err)
		}
	}()
	wantEvents(t, h.events(t), fmt.Sprintf("test syscalls/sys_enter_ptrace POST long:16 long:%d", pid))
}
