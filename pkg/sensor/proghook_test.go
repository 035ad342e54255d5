package sensor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// fdInstallArgs reads fd_install(unsigned int fd, struct file *file).
var fdInstallArgs = []Arg{
	{Source: SrcReg, Reg: 0, Kind: KindInt, Size: 4},
	{Source: SrcRegKFile, Reg: 1, Kind: KindPath},
}

// TestKprobeVerifies loads every program shape of bpf/hook.c with every
// argument source, without attaching: the verifier's verdict does not
// depend on whether the kernel can attach kprobes, so this runs on the
// host too.
func TestKprobeVerifies(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "bpf_loop")
	// every source, two string-like arguments per hook at most
	all := []Arg{
		{Source: SrcRegKFile, Reg: 0, Kind: KindPath},
		{Source: SrcReg, Reg: 1, Kind: KindInt, Size: 4, Signed: true},
		{Source: SrcRegKPath, Reg: 2, Kind: KindPath},
		{Source: SrcRet, Kind: KindInt},
	}
	strs := []Arg{
		{Source: SrcRegStr, Reg: 0, Kind: KindPath},
		{Source: SrcReg, Reg: 1, Kind: KindInt, Size: 2},
		{Source: SrcRegFilename, Reg: 2, Kind: KindPath},
	}
	dentry := []Arg{{Source: SrcRegDentry, Reg: 0, Kind: KindPath}, {Source: SrcReg, Reg: 1, Kind: KindInt, Size: 1}}
	sysArgs := []Arg{
		{Source: SrcRegFile, Reg: 0, Kind: KindFD, Size: 4, Signed: true},
		{Source: SrcRegUstr, Reg: 1, Kind: KindPath},
		{Source: SrcReg, Reg: 2, Kind: KindInt},
	}
	sels := []Selector{
		{Matches: []Match{{Arg: 0, Op: OpPostfix, Strings: []string{".key"}}, {Arg: 1, Op: OpMask, Ints: []int64{4}}}, Actions: ActPost | ActSigkill},
		{Matches: []Match{{Arg: 0, Op: OpNotPrefix, Strings: []string{"/etc/"}}}, Actions: ActSignal, Signal: 10},
	}
	for _, tc := range []struct {
		name string
		spec ProgHookSpec
	}{
		{"entry", ProgHookSpec{Symbol: "security_file_permission", Params: 6, Args: all, Selectors: sels}},
		{"strings", ProgHookSpec{Symbol: "do_filp_open", Params: 3, Args: strs, Selectors: sels}},
		{"dentry", ProgHookSpec{Symbol: "security_inode_unlink", Params: 2, Args: dentry, Selectors: sels}},
		{"return", ProgHookSpec{Symbol: "security_file_permission", Params: 6, Return: true, Args: all, Selectors: sels}},
		{"syscall", ProgHookSpec{Symbol: "__x64_sys_openat", Syscall: true, SyscallNr: 257, Params: 3, Args: sysArgs, Selectors: sels}},
		{"syscall return", ProgHookSpec{Symbol: "__x64_sys_openat", Syscall: true, SyscallNr: 257, Params: 3, Return: true, Args: sysArgs, Selectors: sels}},
		{"binprm and syscall64", ProgHookSpec{Symbol: "security_bprm_check", Params: 2, Args: []Arg{
			{Source: SrcRegBinprm, Reg: 0, Kind: KindPath}, {Source: SrcRegSyscall64, Reg: 1, Kind: KindInt}}, Selectors: sels}},
		{"cred", ProgHookSpec{Symbol: "commit_creds", Params: 1, Args: []Arg{{Source: SrcRegCred, Reg: 0, Kind: KindPath}}}},
		{"kiocb and user_namespace", ProgHookSpec{Symbol: "security_file_permission", Params: 2, Args: []Arg{
			{Source: SrcRegKiocb, Reg: 0, Kind: KindPath}, {Source: SrcRegUserNs, Reg: 1, Kind: KindPath}}, Selectors: sels}},
		{"socket", ProgHookSpec{Symbol: "security_socket_getpeername", Params: 1, Args: []Arg{{Source: SrcRegSocket, Reg: 0, Kind: KindPath}}}},
		{"skb and socket tracking", ProgHookSpec{Symbol: "ip_output", Params: 3, Args: []Arg{
			{Source: SrcRegSock, Reg: 1, Kind: KindPath}, {Source: SrcRegSkb, Reg: 2, Kind: KindPath}},
			Selectors: []Selector{
				{Matches: []Match{{Arg: 1, Op: OpDPort, Ints: []int64{53 | 53<<32}}}, Actions: ActPost | ActTrackSock, SockArg: 1},
				{Actions: ActUntrackSock, SockArg: 0},
			}}},
		{"bpf_attr", ProgHookSpec{Symbol: "bpf_check", Params: 2, Args: []Arg{{Source: SrcRegBpfAttr, Reg: 1, Kind: KindPath}}}},
		{"returned sock tracked", ProgHookSpec{Symbol: "sk_alloc", Params: 2, Return: true, RetSockAction: RetTrackSock,
			Args: []Arg{{Source: SrcReg, Reg: 1, Kind: KindInt, Size: 4, Signed: true}}}},
		{"range, substring and file type", ProgHookSpec{Symbol: "security_file_permission", Params: 2, Args: []Arg{
			{Source: SrcRegKFile, Reg: 0, Kind: KindPath}, {Source: SrcReg, Reg: 1, Kind: KindInt, Size: 4, Signed: true}},
			Selectors: []Selector{
				{Matches: []Match{{Arg: 1, Op: OpInRange, Ints: []int64{1, 4, -3, -1}}, {Arg: 0, Op: OpSubStringIgnCase, Strings: []string{"shadow"}}}},
				{Matches: []Match{{Arg: 1, Op: OpNotInRange, Ints: []int64{2, 2}}, {Arg: 0, Op: OpNotFileType, Ints: []int64{0o040000}}, {Arg: 0, Op: OpSubString, Strings: []string{"/."}}}},
			}}},
		{"bpf_map and perf_event", ProgHookSpec{Symbol: "security_bpf_map_alloc", Params: 1, Args: []Arg{
			{Source: SrcRegBpfMap, Reg: 0, Kind: KindPath}, {Source: SrcRegPerfEvent, Reg: 0, Kind: KindPath}}}},
		{"resolve", ProgHookSpec{Symbol: "security_bprm_check", Params: 1, Args: []Arg{
			{Source: SrcRegStr, Reg: 0, Kind: KindPath, Resolve: []ResolveStep{{8, 8}, {16, 8}, {24, 8}, {24, 8}, {100, 0}}},
			{Source: SrcReg, Reg: 0, Kind: KindInt, Size: 4, Resolve: []ResolveStep{{8, 8}, {16, 4}}},
			{Source: SrcRegKPath, Reg: 0, Kind: KindPath, Resolve: []ResolveStep{{1, 8}, {2, 0}, {3, 0}, {4, 8}, {5, 0}, {6, 8}, {7, 8}, {8, 0}}}},
			Selectors: sels[:1]}},
		{"module", ProgHookSpec{Symbol: "do_init_module", Params: 1, Args: []Arg{{Source: SrcRegModule, Reg: 0, Kind: KindPath}}}},
		{"int32_arr at return", ProgHookSpec{Symbol: "__x64_sys_pipe2", Syscall: true, SyscallNr: 293, Params: 2, Return: true, Args: []Arg{
			{Source: SrcRegI32Arr, Reg: 0, Kind: KindPath, Count: 2}, {Source: SrcRegI32Arr, Reg: 1, Kind: KindPath, Count: uint8(MaxInt32Arr)}}}},
		{"net_device", ProgHookSpec{Symbol: "dev_get_stats", Params: 1, Args: []Arg{{Source: SrcRegNetDev, Reg: 0, Kind: KindPath}},
			Selectors: []Selector{{Matches: []Match{{Arg: 0, Op: OpEqual, Strings: []string{"lo"}}}, Actions: ActPost}}}},
		{"dns", ProgHookSpec{Symbol: "udp_sendmsg", Params: 3, Args: []Arg{
			{Source: SrcRegSock, Reg: 0, Kind: KindPath}, {Source: SrcRegDns, Reg: 1, Kind: KindPath}},
			Selectors: []Selector{{Matches: []Match{{Arg: 0, Op: OpDPort, Ints: []int64{53 | 53<<32}},
				{Arg: 1, Op: OpPostfix, Strings: []string{"example.com"}}}, Actions: ActPost}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := loadProgHook(tc.spec, newRing(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, c := range []struct{ name, feature string }{{"fentry", "fentry"}, {"fexit", "fexit"}} {
		t.Run(c.name, func(t *testing.T) {
			testutil.RequireFeature(t, c.feature)
			k, err := loadProgHook(ProgHookSpec{Attach: AttachFentry, Symbol: "security_file_permission", Params: 2, Return: c.name == "fexit",
				Args: all[:2], Selectors: sels}, newRing(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			k.Close()
		})
	}
	t.Run("fmod_ret", func(t *testing.T) {
		testutil.RequireFeature(t, "fmod_ret")
		override := append([]Selector{{Matches: sels[0].Matches, Actions: ActOverride | ActPost, Error: -1}}, sels[1])
		k, err := loadProgHook(ProgHookSpec{Symbol: "security_file_permission", Params: 2, Override: true,
			Args: all[:2], Selectors: override}, newRing(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		k.Close()
	})
}

// readGeneric reads the next hook record from ring.
func readGeneric(t *testing.T, ring *ebpf.Map) *observer.HookRecord {
	t.Helper()
	rd, err := ringbuf.NewReader(ring)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rd.SetDeadline(time.Now().Add(2 * time.Second))
	rec, err := rd.Read()
	if err != nil {
		t.Fatalf("no record: %v", err)
	}
	var d observer.Decoder
	v, err := d.Decode(rec.RawSample)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := v.(*observer.HookRecord)
	if !ok {
		t.Fatalf("record %T, want a hook record", v)
	}
	return g
}

func twoFiles(t *testing.T) (target, other string) {
	t.Helper()
	dir := t.TempDir()
	target, other = filepath.Join(dir, "tetragon"), filepath.Join(dir, "other")
	for _, f := range []string{target, other} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return target, other
}

// TestKprobeSigkillOnOpen is the seed's enforcement policy on a real
// fd_install kprobe.
func TestKprobeSigkillOnOpen(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	target, other := twoFiles(t)
	ring := newRing(t)
	k, err := LoadProgHook(ProgHookSpec{
		ID: 3, Symbol: "fd_install", Params: 2, Args: fdInstallArgs,
		Selectors: []Selector{{
			Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{target}}},
			Actions: ActPost | ActSigkill,
		}},
	}, ring, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()

	out, err := exec.Command("cat", target).CombinedOutput()
	if !testutil.KilledBySIGKILL(err) || len(out) != 0 {
		t.Fatalf("cat %s: %v, output %q: want killed before reading", target, err, out)
	}
	if out, err := exec.Command("cat", other).CombinedOutput(); err != nil || string(out) != "x" {
		t.Fatalf("cat %s: %v %q, want untouched", other, err, out)
	}
	g := readGeneric(t, ring)
	// the file is the first string-valued argument: string slot 0
	if g.HookID != 3 || g.Strs[0] != target || g.Ints[0] < 0 || g.Ints[0] > 1024 || g.Actions != uint32(ActPost|ActSigkill) {
		t.Fatalf("record %+v", g)
	}
	st, err := k.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched != 1 || st.Signals != 1 || st.Posted != 1 || st.Calls < 2 {
		t.Fatalf("stats %+v: want exactly one match, kill and record", st)
	}
}

// TestKprobePinnedKeepsEnforcing is persistent enforcement through a
// kprobe: with its link pinned, the hook keeps killing after the loader's
// handles are closed, until the pin directory is removed.
func TestKprobePinnedKeepsEnforcing(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	testutil.RequireFeature(t, "link_pinning")
	if _, err := kernelfs.BPF().Ensure(); err != nil {
		t.Fatal(err)
	}
	target, _ := twoFiles(t)
	k, err := LoadProgHook(ProgHookSpec{
		Symbol: "fd_install", Params: 2, Args: fdInstallArgs,
		Selectors: []Selector{{Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{target}}}, Actions: ActSigkill}},
	}, newRing(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(kernelfs.BPF().Path, "kprobe-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := k.Pin(filepath.Join(dir, "hook")); err != nil {
		k.Close()
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	err = exec.Command("cat", target).Run()
	if !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat with the hook pinned and closed: %v, want killed", err)
	}
	// detaches before it returns, which a bare unlink does not promise
	if err := RemovePinned(dir); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cat", target).CombinedOutput(); err != nil || string(out) != "x" {
		t.Fatalf("cat after removing the pins: %v %q, want untouched", err, out)
	}
}

// TestKprobeSyscallReturn hooks openat's arch entry point at return: the
// path comes from the user registers the syscall took, and the record
// carries the returned fd.
func TestKprobeSyscallReturn(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kretprobe")
	target, _ := twoFiles(t)
	ring := newRing(t)
	k, err := LoadProgHook(ProgHookSpec{
		ID: 4, Symbol: "__x64_sys_openat", Syscall: true, SyscallNr: 257, Params: 2, Return: true,
		Args: []Arg{
			{Source: SrcReg, Reg: 0, Kind: KindInt, Size: 4, Signed: true},
			{Source: SrcRegUstr, Reg: 1, Kind: KindPath},
		},
		Selectors: []Selector{{Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{target}}}, Actions: ActPost}},
	}, ring, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if out, err := exec.Command("cat", target).CombinedOutput(); err != nil {
		t.Fatalf("cat: %v %s", err, out)
	}
	g := readGeneric(t, ring)
	// AT_FDCWD is -100: only a sign-extended 32-bit read gives it
	if g.Syscall != 257 || g.Strs[0] != target || g.Ints[0] != -100 || g.Ret < 3 {
		t.Fatalf("record %+v: want openat(AT_FDCWD, %s) returning an fd", g, target)
	}
}

// TestKprobeOverride serves an Override selector with fmod_ret on
// security_file_open: opening the protected file fails with EPERM.
func TestKprobeOverride(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "fmod_ret")
	target, other := twoFiles(t)
	ring := newRing(t)
	k, err := LoadProgHook(ProgHookSpec{
		ID: 5, Symbol: "security_file_open", Params: 1, Override: true,
		Args: []Arg{{Source: SrcRegKFile, Reg: 0, Kind: KindPath}},
		Selectors: []Selector{{
			Matches: []Match{{Arg: 0, Op: OpEqual, Strings: []string{target}}},
			Actions: ActPost | ActOverride, Error: -int32(syscall.EPERM),
		}},
	}, ring, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	out, err := exec.Command("cat", target).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Fatalf("cat %s: %v %q, want EPERM", target, err, out)
	}
	if out, err := exec.Command("cat", other).CombinedOutput(); err != nil || string(out) != "x" {
		t.Fatalf("cat %s: %v %q, want untouched", other, err, out)
	}
	if g := readGeneric(t, ring); g.Strs[0] != target || g.Actions&uint32(ActOverride) == 0 {
		t.Fatalf("record %+v", g)
	}
}

// TestPointsStageConcurrent stages hooks of one attach point at once:
// each verifies its object without the objects' lock, so several may load
// the same object, and exactly one of them must become the point that
// every hook shares. Nothing is attached, so this runs on the host too.
func TestPointsStageConcurrent(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "bpf_loop")
	ps, err := NewPoints(newRing(t), Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	const n = 4
	hs := make([]*ProgHook, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs[i], errs[i] = ps.stage(ProgHookSpec{ID: uint32(10 + i), Symbol: "fd_install", Params: 2, Args: fdInstallArgs,
				Selectors: []Selector{{Matches: []Match{{Arg: 1, Op: OpPrefix, Strings: []string{"/etc/"}}}, Actions: ActPost}}}, false)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("stage %d: %v", i, err)
		}
	}
	ps.mu.Lock()
	points := len(ps.points)
	ps.mu.Unlock()
	if points != 1 {
		t.Fatalf("%d objects for one attach point, want 1", points)
	}
	for i, h := range hs {
		if h.p != hs[0].p {
			t.Fatalf("hook %d is in another object than hook 0", i)
		}
		if _, err := h.Stats(); err != nil {
			t.Fatalf("hook %d: %v", i, err)
		}
	}
	if hs[0].p.staged != n {
		t.Fatalf("the object counts %d staged hooks, want %d", hs[0].p.staged, n)
	}
	for _, h := range hs {
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ps.mu.Lock()
	points = len(ps.points)
	ps.mu.Unlock()
	if points != 0 {
		t.Fatalf("%d objects left after every hook closed", points)
	}
}
