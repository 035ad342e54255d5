package hooks

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/hookevent"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// dupHelperEnv makes the test binary a helper process that holds a file
// open from before a policy loads, and dup()s it when told to.
const dupHelperEnv = "TETRAGON_HOOKS_DUP_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(dupHelperEnv); path != "" {
		os.Exit(dupHelper(path))
	}
	if code, ok := helperMain(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// dupHelper opens path, says "ready", waits for a line on stdin, then
// duplicates the descriptor with dup(2), which installs the same file in
// a new descriptor (fd_install) without opening anything.
func dupHelper(path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 1
	}
	if _, err := syscall.Dup(int(f.Fd())); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("survived")
	return 0
}

// dupProcess is a running dupHelper.
type dupProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func (h *harness) startDupHelper(t *testing.T, path string) *dupProcess {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), dupHelperEnv+"="+path)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(cmd.Process.Pid)] = "dup-helper"
	h.mu.Unlock()
	p := &dupProcess{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("dup helper: %q %v", line, err)
	}
	return p
}

// dup tells the helper to dup its descriptor and reports whether it was
// killed by SIGKILL doing so.
func (p *dupProcess) dup(t *testing.T) (killed bool) {
	t.Helper()
	io.WriteString(p.in, "go\n")
	line, _ := p.out.ReadString('\n')
	err := p.cmd.Wait()
	if testutil.KilledBySIGKILL(err) {
		return true
	}
	if err != nil || line != "survived\n" {
		t.Fatalf("dup helper: %q %v", line, err)
	}
	return false
}

// harness loads policies through one Manager whose hooks write to a ring
// buffer of its own, and turns the records of the test's own processes
// into one-line summaries.
type harness struct {
	mech     string
	features map[string]bool
	dir      string
	m        *Manager
	build    *hookevent.Builder
	rd       *ringbuf.Reader

	mu   sync.Mutex
	pids map[uint32]string // pid -> name of a process the test ran
	// others names the records of processes the test did not start;
	// empty: they are ignored
	others string
}

func newHarness(t testing.TB, mech string, features map[string]bool) *harness {
	t.Helper()
	return newHarnessOpts(t, mech, sensor.Options{Features: features})
}

// newHarnessOpts is newHarness with the manager's loader options.
func newHarnessOpts(t testing.TB, mech string, opts sensor.Options) *harness {
	t.Helper()
	features := opts.Features
	// the size the hook objects declare for the shared ring buffer
	ring, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ringbuf.NewReader(ring)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{mech: mech, features: features, dir: t.TempDir(), rd: rd, pids: map[uint32]string{},
		m: NewManager(zerolog.Nop(), ring, opts), build: hookevent.NewBuilder(zerolog.Nop(), nil)}
	t.Cleanup(func() {
		if err := h.m.Close(); err != nil {
			t.Errorf("closing hooks: %v", err)
		}
		rd.Close()
		ring.Close()
	})
	return h
}

// load loads a policy whose YAML has %[1]s for the hook-mechanism option and
// %[2]s for the test's directory, and checks the mechanism it got.
func (h *harness) load(t *testing.T, policy string) { h.loadWith(t, policy, h.mech) }

// loadWith loads a policy through mechanism mech (also its
// hook-mechanism option), with extra for %[3]s..., and checks the
// mechanism it got.
func (h *harness) loadWith(t *testing.T, policy, mech string, extra ...any) {
	t.Helper()
	start := time.Now()
	name, err := h.tryLoad(t, policy, mech, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("policy %s loaded through %s in %v", name, mech, time.Since(start).Round(time.Millisecond))
	if got := h.mechanismOf(t, name); got != mech {
		t.Fatalf("policy %s is served by %s, want %s", name, got, mech)
	}
}

// tryLoad loads a policy with its hook-mechanism option set to option and
// returns the policy's name and the load error.
func (h *harness) tryLoad(t *testing.T, policy, option string, extra ...any) (string, error) {
	t.Helper()
	p := h.parse(t, policy, option, extra...)
	return p.Metadata.Name, h.m.LoadPolicy(p)
}

// parse parses a policy whose YAML has %[1]s for the hook-mechanism
// option, %[2]s for the test's directory and %[3]s... for extra.
func (h *harness) parse(t *testing.T, policy, option string, extra ...any) *tp.TracingPolicy {
	t.Helper()
	text := []byte(policy)
	if strings.Contains(policy, "%[") {
		// without explicit-index verbs fmt would append the unused
		// arguments as %!(EXTRA ...)
		text = fmt.Appendf(nil, policy, append([]any{option, h.dir}, extra...)...)
	}
	ps, err := tp.Parse("policy.yaml", text)
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

// mechanismOf returns the mechanism serving the one hook of policy name.
func (h *harness) mechanismOf(t *testing.T, name string) string {
	t.Helper()
	for _, p := range h.m.Status() {
		if p.Name == name && len(p.Hooks) == 1 {
			return p.Hooks[0].Mechanism
		}
	}
	t.Fatalf("policy %s is not loaded with one hook: %+v", name, h.m.Status())
	return ""
}

// event is a summarized event of a process the test ran.
type event struct {
	policy string
	// text is "<name> <function> <action> <args>", the test directory
	// written as $DIR
	text  string
	ktime uint64
	// ret is a return probe's return value as "<kind>:<value>", "" when
	// the event has none
	ret string
	// kprobe is the event, for a kprobe's
	kprobe *api.ProcessKprobe
}

// stats returns the counters of the only hook loaded.
func (h *harness) stats(t *testing.T) sensor.GenericStats {
	t.Helper()
	st := h.m.Status()
	if len(st) != 1 || len(st[0].Hooks) != 1 {
		t.Fatalf("status %+v, want one policy with one hook", st)
	}
	return st[0].Hooks[0].Stats
}

// run runs name with args in the test directory and returns its output,
// and whether SIGKILL ended it; any other failure fails the test.
func (h *harness) run(t *testing.T, name string, args ...string) (out string, killed bool) {
	t.Helper()
	out, err := h.start(t, name, args...)
	if testutil.KilledBySIGKILL(err) {
		return out, true
	}
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return out, false
}

// runFails runs a command that must exit with an error, and returns its
// output and error.
func (h *harness) runFails(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := h.start(t, name, args...)
	if err == nil {
		t.Fatalf("%s %v succeeded: %s", name, args, out)
	}
	return out, err
}

// start runs a command, noting its pid so that its events are kept.
func (h *harness) start(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = h.dir
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(cmd.Process.Pid)] = name
	h.mu.Unlock()
	err := cmd.Wait()
	return buf.String(), err
}

// events drains the ring buffer and summarizes, in order, the events of
// processes started by run, with the test directory written as $DIR so
// that runs in different directories compare equal. A record of a process
// the test did not start is ignored.
func (h *harness) events(t *testing.T) []event {
	t.Helper()
	var out []event
	var d observer.Decoder
	for _, raw := range testutil.DrainRing(t, h.rd, 300*time.Millisecond) {
		v, err := d.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := v.(*observer.HookRecord)
		if !ok {
			continue
		}
		h.mu.Lock()
		name, ours := h.pids[g.Pid]
		h.mu.Unlock()
		if !ours {
			if h.others == "" {
				continue
			}
			name = h.others
		}
		desc := h.m.Hook(g.HookID)
		if desc == nil {
			t.Fatalf("record of hook %d, which is not loaded", g.HookID)
		}
		resp, ok := h.build.Event(desc, g, func() (*api.Process, *api.Process) { return nil, nil })
		if !ok {
			t.Fatalf("record of hook %d made no event", g.HookID)
		}
		policy, hook, action, args := summarize(t, resp)
		e := strings.ReplaceAll(fmt.Sprintf("%s %s %s %s", name, hook,
			strings.TrimPrefix(action.String(), "KPROBE_ACTION_"), argsString(args)), h.dir, "$DIR")
		// the syscall (the mapping's records carry it) says where it was seen
		t.Logf("%s: %s: %s (syscall %d, ktime %d)", h.mech, policy, e, g.Syscall, g.Ktime)
		ev := event{policy: policy, text: e, ktime: g.Ktime, kprobe: resp.GetProcessKprobe()}
		if r := resp.GetProcessKprobe().GetReturn(); r != nil {
			ev.ret = argsString([]*api.KprobeArgument{r})
		}
		out = append(out, ev)
	}
	return out
}

// summarize returns what the tests compare of a policy event of any kind;
// hook is the function, LSM hook, group/event of a tracepoint, or symbol
// of a uprobe.
func summarize(t *testing.T, resp *api.GetEventsResponse) (policy, hook string, action api.KprobeAction, args []*api.KprobeArgument) {
	t.Helper()
	switch e := resp.GetEvent().(type) {
	case *api.GetEventsResponse_ProcessKprobe:
		k := e.ProcessKprobe
		return k.GetPolicyName(), k.GetFunctionName(), k.GetAction(), k.GetArgs()
	case *api.GetEventsResponse_ProcessTracepoint:
		k := e.ProcessTracepoint
		return k.GetPolicyName(), k.GetSubsys() + "/" + k.GetEvent(), k.GetAction(), k.GetArgs()
	case *api.GetEventsResponse_ProcessUprobe:
		k := e.ProcessUprobe
		return k.GetPolicyName(), k.GetSymbol(), k.GetAction(), k.GetArgs()
	case *api.GetEventsResponse_ProcessLsm:
		k := e.ProcessLsm
		return k.GetPolicyName(), k.GetFunctionName(), k.GetAction(), k.GetArgs()
	case *api.GetEventsResponse_ProcessUsdt:
		// Tetragon's usdt events carry no action: posting is what they mean
		k := e.ProcessUsdt
		return k.GetPolicyName(), k.GetProvider() + ":" + k.GetName(), api.KprobeAction_KPROBE_ACTION_POST, k.GetArgs()
	}
	t.Fatalf("event %v is no policy event", resp)
	return
}

func argsString(args []*api.KprobeArgument) string {
	var parts []string
	for _, a := range args {
		switch {
		case a.GetFileArg() != nil:
			parts = append(parts, "file:"+a.GetFileArg().GetPath())
		case a.GetUserNsArg() != nil:
			u := a.GetUserNsArg()
			parts = append(parts, fmt.Sprintf("userns:level=%d,uid=%d,host=%v", u.GetLevel().GetValue(), u.GetUid().GetValue(), u.GetNs().GetIsHost() && u.GetNs().GetInum() != 0))
		case a.GetProcessCredentialsArg() != nil:
			c := a.GetProcessCredentialsArg()
			parts = append(parts, fmt.Sprintf("cred:uid=%d,euid=%d,caps=%v", c.GetUid().GetValue(), c.GetEuid().GetValue(), len(c.GetCaps().GetEffective()) > 0))
		case a.GetLinuxBinprmArg() != nil:
			parts = append(parts, "binprm:"+a.GetLinuxBinprmArg().GetPath())
		case a.GetPathArg() != nil:
			parts = append(parts, "path:"+a.GetPathArg().GetPath())
		case a.GetDnsArg() != nil:
			d := a.GetDnsArg()
			parts = append(parts, fmt.Sprintf("dns:%s/%s/class=%d/id=%d/response=%v/parsed=%v", d.GetQueryName(), d.GetQueryTypeStr(),
				d.GetQueryClass(), d.GetTxId(), d.GetResponse(), d.GetParsed()))
		case a.GetStringArg() != "":
			parts = append(parts, "string:"+a.GetStringArg())
		case a.GetSockArg() != nil:
			s := a.GetSockArg()
			parts = append(parts, fmt.Sprintf("sock:%s/%s/%s/%s:%d->%s:%d/%s", s.GetFamily(), s.GetType(), s.GetProtocol(),
				s.GetSaddr(), s.GetSport(), s.GetDaddr(), s.GetDport(), s.GetState()))
		case a.GetBpfAttrArg() != nil:
			b := a.GetBpfAttrArg()
			parts = append(parts, fmt.Sprintf("bpfattr:%s/%d/%s", b.GetProgType(), b.GetInsnCnt(), b.GetProgName()))
		case a.GetBpfMapArg() != nil:
			m := a.GetBpfMapArg()
			parts = append(parts, fmt.Sprintf("bpfmap:%s/%d/%d/%d/%s", m.GetMapType(), m.GetKeySize(), m.GetValueSize(), m.GetMaxEntries(), m.GetMapName()))
		case a.GetPerfEventArg() != nil:
			p := a.GetPerfEventArg()
			parts = append(parts, fmt.Sprintf("perfevent:%s/%s/%#x/%#x", p.GetType(), p.GetKprobeFunc(), p.GetConfig(), p.GetProbeAddr()))
		case a.GetSkbArg() != nil:
			s := a.GetSkbArg()
			parts = append(parts, fmt.Sprintf("skb:%s/%s/%s:%d->%s:%d/len=%d", s.GetFamily(), s.GetProtocol(),
				s.GetSaddr(), s.GetSport(), s.GetDaddr(), s.GetDport(), s.GetLen()))
		case a.GetSockaddrArg() != nil:
			s := a.GetSockaddrArg()
			parts = append(parts, fmt.Sprintf("sockaddr:%s/%s:%d", s.GetFamily(), s.GetAddr(), s.GetPort()))
		case a.GetModuleArg() != nil:
			m := a.GetModuleArg()
			sig := "unset"
			if m.GetSignatureOk() != nil {
				sig = fmt.Sprint(m.GetSignatureOk().GetValue())
			}
			parts = append(parts, fmt.Sprintf("module:%s/signature_ok=%s/tainted=%v", m.GetName(), sig, m.GetTainted()))
		case a.GetBytesArg() != nil:
			parts = append(parts, fmt.Sprintf("bytes:%q", a.GetBytesArg()))
		case a.GetTruncatedBytesArg() != nil:
			tb := a.GetTruncatedBytesArg()
			parts = append(parts, fmt.Sprintf("truncated-bytes:%q/%d", tb.GetBytesArg(), tb.GetOrigSize()))
		case a.GetInt32ListArg() != nil:
			parts = append(parts, fmt.Sprintf("int32s:%v", a.GetInt32ListArg().GetValues()))
		case a.GetKernelCapTArg() != "":
			parts = append(parts, "caps:"+a.GetKernelCapTArg())
		case a.GetSyscallId() != nil:
			parts = append(parts, fmt.Sprintf("syscall:%s/%d", a.GetSyscallId().GetAbi(), a.GetSyscallId().GetId()))
		case a.GetLongArg() != 0:
			parts = append(parts, fmt.Sprintf("long:%d", a.GetLongArg()))
		case a.GetSizeArg() != 0:
			parts = append(parts, fmt.Sprintf("size:%d", a.GetSizeArg()))
		case a.GetUintArg() != 0:
			parts = append(parts, fmt.Sprintf("uint:%d", a.GetUintArg()))
		default:
			parts = append(parts, fmt.Sprintf("int:%d", a.GetIntArg()))
		}
	}
	return strings.Join(parts, " ")
}

// writeFiles creates files (relative to dir) with their contents.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
