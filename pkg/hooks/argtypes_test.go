package hooks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

const nopFdInstallPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "nop-fd-install"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: "nop"
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/watched"
`

const nopSyscallPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "nop-openat"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "sys_openat"
    syscall: true
    args:
    - index: 0
      type: "nop"
    - index: 1
      type: "string"
    - index: 2
      type: "nop"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/watched"
`

// A policy with nop arguments loads on the syscall-tracepoint mapping and
// on kprobes, and its events carry the other arguments only.
func TestNopKernelFunction(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		for _, tc := range []struct{ name, policy, want string }{
			{"fd_install", nopFdInstallPolicy, "cat fd_install POST file:$DIR/watched"},
			{"syscall", nopSyscallPolicy, "cat sys_openat POST string:$DIR/watched"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, mech, testutil.Kernel(t).Map())
				writeFiles(t, h.dir, map[string]string{"watched": "w", "other": "x"})
				h.load(t, tc.policy)
				h.run(t, "cat", filepath.Join(h.dir, "watched"))
				h.run(t, "cat", filepath.Join(h.dir, "other"))
				wantEvents(t, h.events(t), tc.want)
			})
		}
	})
}

const nopTracepointPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "nop-tracepoint"
spec:
  tracepoints:
  - subsystem: "syscalls"
    event: "sys_enter_openat"
    args:
    - index: 4
      type: "nop"
    - index: 5
      type: "nop"
    - index: 6
      type: "string"
    selectors:
    - matchArgs:
      - index: 6
        operator: "Equal"
        values:
        - "%[2]s/watched"
`

// On a tracepoint a nop field is not read either.
func TestNopTracepoint(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	h := newHarness(t, compiler.MechTracepoint, testutil.Kernel(t).Map())
	writeFiles(t, h.dir, map[string]string{"watched": "w", "other": "x"})
	h.loadWith(t, nopTracepointPolicy, compiler.MechTracepoint)
	h.run(t, "cat", filepath.Join(h.dir, "watched"))
	h.run(t, "cat", filepath.Join(h.dir, "other"))
	wantEvents(t, h.events(t), "cat syscalls/sys_enter_openat POST string:$DIR/watched")
}

const nopUprobePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "nop-uprobe"
spec:
  uprobes:
  - path: "%[3]s"
    offsets:
    - %[4]d
    args:
    - index: 1
      type: "nop"
    - index: 0
      type: "int64"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "4242"
`

// On a uprobe too.
func TestNopUprobe(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "uprobe")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	off := funcOffset(t, self, uprobeTarget)
	h := newHarness(t, compiler.MechUprobe, testutil.Kernel(t).Map())
	h.loadWith(t, nopUprobePolicy, compiler.MechUprobe, self, off)
	h.runHelper(t, uprobeHelperEnv, "4242")
	h.runHelper(t, uprobeHelperEnv, "7")
	wantEvents(t, h.events(t), fmt.Sprintf("helper %#x POST long:4242", off))
}

const syscall64Policy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "syscall64"
spec:
  tracepoints:
  - subsystem: "raw_syscalls"
    event: "sys_enter"
    %[3]s
    args:
    - index: %[4]d
      type: "syscall64"
    selectors:
    - matchArgs:
      - index: %[4]d
        operator: "Equal"
        values:
        - "%[5]d"
      matchActions:
      - action: Sigkill
    - matchArgs:
      - index: %[4]d
        operator: "Equal"
        values:
        - "4043"
        - "0x80000fcb"
`

// int80Program is a static x86_64 executable that makes i386 system call
// nr through int 0x80 (a 32-bit call from a 64-bit process: the kernel
// marks it compat and takes the number from the i386 table), then exits 0.
func int80Program(nr uint32) []byte {
	code := []byte{0xb8, 0, 0, 0, 0, 0xcd, 0x80}
	binary.LittleEndian.PutUint32(code[1:], nr)
	return staticELF(code, nil)
}

// int80OpenRead is a static x86_64 executable that opens path and reads a
// byte of it with the i386 system calls open (5) and read (3), through int
// 0x80, then exits 0: a file access a 64-bit system call table does not
// name.
func int80OpenRead(path string) []byte {
	const data = elfBase + elfCodeOff + 48
	le := binary.LittleEndian
	var c []byte
	c = le.AppendUint32(append(c, 0xbb), data)                     // mov ebx, path
	c = append(c, 0x31, 0xc9)                                      // xor ecx, ecx (O_RDONLY)
	c = le.AppendUint32(append(c, 0xb8), 5)                        // mov eax, 5 (open)
	c = append(c, 0xcd, 0x80, 0x89, 0xc3)                          // int 0x80; mov ebx, eax
	c = le.AppendUint32(append(c, 0xb9), data+uint32(len(path))+1) // mov ecx, buffer
	c = le.AppendUint32(append(c, 0xba), 1)                        // mov edx, 1
	c = le.AppendUint32(append(c, 0xb8), 3)                        // mov eax, 3 (read)
	c = append(c, 0xcd, 0x80)                                      // int 0x80
	return staticELF(c, append([]byte(path), make([]byte, 9)...))
}

const elfBase, elfCodeOff = 0x400000, 64 + 56

// staticELF is a static x86_64 executable of one writable segment: code,
// then a 64-bit exit(0), then data at elfBase+elfCodeOff+48 (the code and
// the exit must fit 48 bytes).
func staticELF(code, data []byte) []byte {
	code = append(code, 0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05) // mov eax, 60; xor edi, edi; syscall
	if data != nil {
		if len(code) > 48 {
			panic("staticELF: code over 48 bytes")
		}
		code = append(code, make([]byte, 48-len(code))...)
		code = append(code, data...)
	}
	var b []byte
	le := binary.LittleEndian
	b = append(b, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	b = le.AppendUint16(b, 2)    // ET_EXEC
	b = le.AppendUint16(b, 0x3e) // EM_X86_64
	b = le.AppendUint32(b, 1)
	b = le.AppendUint64(b, elfBase+elfCodeOff) // entry
	b = le.AppendUint64(b, 64)                 // program headers
	b = le.AppendUint64(b, 0)                  // no section headers
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, 64)
	b = le.AppendUint16(b, 56)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 64)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 1) // PT_LOAD
	b = le.AppendUint32(b, 7) // R+W+X: the data is written to
	b = le.AppendUint64(b, 0)
	b = le.AppendUint64(b, elfBase)
	b = le.AppendUint64(b, elfBase)
	b = le.AppendUint64(b, elfCodeOff+uint64(len(code)))
	b = le.AppendUint64(b, elfCodeOff+uint64(len(code)))
	b = le.AppendUint64(b, 0x1000)
	return append(b, code...)
}

// syscall64 on raw_syscalls/sys_enter (format field 4, or TP_PROTO
// argument 1 as a raw tracepoint): the event reports the number and its
// ABI, and matchArgs compare the number with bit 31 set for a 32-bit
// call, as Tetragon does. A 64-bit call and a 32-bit (int 0x80) call with
// the same number are told apart.
func TestSyscall64(t *testing.T) {
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
			t.Run("x64", func(t *testing.T) {
				h := newHarness(t, tc.mech, features)
				h.loadWith(t, syscall64Policy, tc.mech, tc.raw, tc.index, killedSyscall)
				if !h.runHelper(t, syscallHelperEnv, strconv.Itoa(killedSyscall)) {
					t.Fatal("system call 4042 was not killed")
				}
				if h.runHelper(t, syscallHelperEnv, strconv.Itoa(survivedSyscall)) {
					t.Fatal("system call 4043 was killed")
				}
				wantEvents(t, h.events(t),
					"helper raw_syscalls/sys_enter SIGKILL syscall:x64/4042",
					"helper raw_syscalls/sys_enter POST syscall:x64/4043")
			})
			t.Run("i386", func(t *testing.T) {
				h := newHarness(t, tc.mech, features)
				for _, nr := range []uint32{killedSyscall, survivedSyscall} {
					if err := os.WriteFile(filepath.Join(h.dir, fmt.Sprint("int80-", nr)), int80Program(nr), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				// the 32-bit 4042 is killed, not the 64-bit one
				h.loadWith(t, syscall64Policy, tc.mech, tc.raw, tc.index, syscall64Compat|killedSyscall)
				out, err := h.start(t, filepath.Join(h.dir, fmt.Sprint("int80-", survivedSyscall)))
				var ee *exec.ExitError
				if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGSEGV {
					t.Skip("kernel lacks 32-bit system calls (IA32 emulation): int 0x80 faults in a 64-bit process")
				}
				if err != nil {
					t.Fatalf("int80-4043: %v: %s", err, out)
				}
				if _, killed := h.run(t, filepath.Join(h.dir, fmt.Sprint("int80-", killedSyscall))); !killed {
					t.Fatal("the 32-bit system call 4042 was not killed")
				}
				if h.runHelper(t, syscallHelperEnv, strconv.Itoa(killedSyscall)) {
					t.Fatal("the 64-bit system call 4042 was killed")
				}
				wantEvents(t, h.events(t),
					"$DIR/int80-4043 raw_syscalls/sys_enter POST syscall:i386/4043",
					"$DIR/int80-4042 raw_syscalls/sys_enter SIGKILL syscall:i386/4042")
			})
		})
	}
}

// syscall64Compat is sensor.Syscall64Compat as the policy's values write it.
const syscall64Compat = 0x80000000

const binprmPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "binprm"
spec:
  %[3]s:
  - %[4]s
    args:
    - index: 0
      type: "linux_binprm"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[5]s"
`

// linux_binprm on security_bprm_check (kprobe) and bprm_check_security
// (BPF LSM): the event reports the path of the file being executed, and
// matchArgs match it as a path, so only the exec of the test's own copy of
// true posts (on the lanes every tool is one busybox file).
func TestLinuxBinprm(t *testing.T) {
	testutil.RequireRoot(t)
	features := testutil.Kernel(t).Map()
	for _, tc := range []struct{ mech, feature, list, hook, name string }{
		{compiler.MechKprobe, "kprobe", "kprobes", `call: "security_bprm_check"
    syscall: false`, "security_bprm_check"},
		{compiler.MechLSM, "bpf_lsm", "lsmhooks", `hook: "bprm_check_security"`, "bprm_check_security"},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			testutil.RequireFeature(t, tc.feature)
			h := newHarness(t, tc.mech, features)
			bin := filepath.Join(h.dir, "bin", "true")
			copyExecutable(t, "true", bin)
			h.loadWith(t, binprmPolicy, tc.mech, tc.list, tc.hook, bin)
			h.run(t, bin)
			h.run(t, "cat", "/dev/null")
			wantEvents(t, h.events(t), "$DIR/bin/true "+tc.name+" POST binprm:$DIR/bin/true")
		})
	}
}

const credPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "cred"
spec:
  kprobes:
  - call: "commit_creds"
    syscall: false
    args:
    - index: 0
      type: "cred"
    selectors:
    - matchBinaries:
      - operator: "In"
        values:
        - "%[3]s"
`

// cred on commit_creds: an exec commits the new program's credentials
// (begin_new_exec, once the executable is the new one), so the test's copy
// of true run as root and as nobody gives events with the ids and
// capabilities of each.
func TestCred(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	bin := filepath.Join(h.dir, "bin", "true")
	copyExecutable(t, "true", bin)
	// nobody must reach the copy: t.TempDir's directories are root's only
	for _, d := range []string{filepath.Dir(h.dir), h.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.loadWith(t, credPolicy, compiler.MechKprobe, bin)
	h.run(t, bin)
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(cmd.Process.Pid)] = "nobody"
	h.mu.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// the exec commits once; a program may commit more (busybox, the
	// lanes' true, sets its ids again at start), with the same values
	var texts []string
	for _, e := range h.events(t) {
		texts = append(texts, e.text)
	}
	root, nobody := "$DIR/bin/true commit_creds POST cred:uid=0,euid=0,caps=true", "nobody commit_creds POST cred:uid=65534,euid=65534,caps=false"
	i := 0
	for i < len(texts) && texts[i] == root {
		i++
	}
	j := i
	for j < len(texts) && texts[j] == nobody {
		j++
	}
	if i == 0 || j == i || j != len(texts) {
		t.Fatalf("events:\n%s\nwant %q, then %q, once or more each", strings.Join(texts, "\n"), root, nobody)
	}
}

const netDevicePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "net-device"
spec:
  kprobes:
  - call: "dev_get_stats"
    syscall: false
    args:
    - index: 0
      type: "net_device"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "lo"
`

// net_device on dev_get_stats, which reading /proc/net/dev calls for each
// device: the event reports the device's name, and matchArgs match it as
// a string, so only lo posts.
func TestNetDevice(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	h.loadWith(t, netDevicePolicy, compiler.MechKprobe)
	h.run(t, "cat", "/proc/net/dev")
	got := h.events(t)
	if len(got) == 0 {
		t.Fatal("no event for lo")
	}
	for _, e := range got {
		if e.text != "cat dev_get_stats POST string:lo" {
			t.Fatalf("event %q, want only lo's", e.text)
		}
	}
}

const kiocbPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "kiocb"
spec:
  kprobes:
  - call: "%[4]s"
    syscall: false
    args:
    - index: 0
      type: "kiocb"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[3]s"
`

// kiocb on the write_iter of the test directory's file system, tmpfs or
// ramfs, where the lanes' test directories are: generic_file_write_iter,
// and since Linux 6.6 shmem_file_write_iter for tmpfs. The event reports the
// path of the kiocb's file, matched as a path.
func TestKiocb(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.dir, &st); err != nil {
		t.Fatal(err)
	}
	const tmpfsMagic, ramfsMagic = 0x01021994, 0x858458f6
	if st.Type != tmpfsMagic && st.Type != ramfsMagic {
		// not a kernel feature: this test knows how tmpfs and ramfs write
		t.Fatalf("the test directory is on file system %#x; this test hooks the write_iter of tmpfs and ramfs only (TMPDIR on one of them)", st.Type)
	}
	fn := "generic_file_write_iter"
	if st.Type == tmpfsMagic && kernelHasSymbol(t, "shmem_file_write_iter") {
		fn = "shmem_file_write_iter"
	}
	target := filepath.Join(h.dir, "written")
	h.loadWith(t, kiocbPolicy, compiler.MechKprobe, target, fn)
	h.run(t, "sh", "-c", "echo x > written; echo y > other")
	wantEvents(t, h.events(t), "sh "+fn+" POST file:$DIR/written")
}

// kernelHasSymbol reports whether /proc/kallsyms names a function.
func kernelHasSymbol(t *testing.T, name string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[2] == name {
			return true
		}
	}
	return false
}

const userNsPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "user-namespace"
spec:
  kprobes:
  - call: "cap_capable"
    syscall: false
    args:
    - index: 1
      type: "user_namespace"
    - index: 2
      type: "int"
    selectors:
    - matchArgs:
      - index: 2
        operator: "Equal"
        values:
        - "2"
      matchBinaries:
      - operator: "In"
        values:
        - "%[3]s"
`

// user_namespace on cap_capable: root reading a file with mode 000 needs
// CAP_DAC_READ_SEARCH (2) in the file's user namespace, the host's: level
// 0, owner 0.
func TestUserNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	bin := filepath.Join(h.dir, "bin", "cat")
	copyExecutable(t, "cat", bin)
	writeFiles(t, h.dir, map[string]string{"locked": "l"})
	if err := os.Chmod(filepath.Join(h.dir, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	h.loadWith(t, userNsPolicy, compiler.MechKprobe, bin)
	if out, _ := h.run(t, bin, "locked"); out != "l" {
		t.Fatalf("cat locked: %q", out)
	}
	got := h.events(t)
	if len(got) == 0 {
		t.Fatal("no cap_capable event")
	}
	for _, e := range got {
		if e.text != "$DIR/bin/cat cap_capable POST userns:level=0,uid=0,host=true int:2" {
			t.Fatalf("event %q", e.text)
		}
	}
}

// bpfAttrPolicy reports bpf_check's union bpf_attr: the program a
// BPF_PROG_LOAD loads.
const bpfAttrPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "bpfattr"
spec:
  kprobes:
  - call: "bpf_check"
    syscall: false
    args:
    - index: 1
      type: "bpf_attr"
`

// bpf_attr on bpf_check: the test loads a two-instruction socket filter
// named bpf18attr, and the event reports its type, size and name.
func TestBpfAttr(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	if err := h.m.LoadPolicy(h.parse(t, bpfAttrPolicy, "")); err != nil {
		t.Fatal(err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpf18attr", Type: ebpf.SocketFilter, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	prog.Close()
	var got []string
	for _, e := range h.events(t) {
		if strings.Contains(e.text, "bpf18attr") {
			got = append(got, e.text)
		}
	}
	// One NewProgram can be more than one bpf_check: cilium/ebpf retries
	// BPF_PROG_LOAD when the kernel returns EAGAIN (a signal, such as the Go
	// runtime's preemption signal, arrived during verification). Each attempt
	// is a real call, so every event must be this one and there must be one.
	want := "test bpf_check POST bpfattr:BPF_PROG_TYPE_SOCKET_FILTER/2/bpf18attr"
	if len(got) == 0 {
		t.Fatalf("no bpf_check event for bpf18attr, want %q", want)
	}
	for _, g := range got {
		if g != want {
			t.Fatalf("events %q, want each %q", got, want)
		}
	}
}
