package hooks

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// connectHelperEnv makes the test binary a helper that takes effective uid
// UID and connects to ADDR (the variable's value is "UID ADDR"), printing
// "connected" or "refused <errno>".
const connectHelperEnv = "TETRAGON_HOOKS_CONNECT_HELPER"

func connectHelper() (int, bool) {
	v := os.Getenv(connectHelperEnv)
	if v == "" {
		return 0, false
	}
	uidStr, addr, _ := strings.Cut(v, " ")
	uid, err := strconv.Atoi(uidStr)
	if err != nil {
		fmt.Println(err)
		return 1, true
	}
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		fmt.Println(err)
		return 1, true
	}
	// the effective uid only: the real one stays root, as a setuid
	// program's would
	if err := syscall.Setresuid(-1, uid, -1); err != nil {
		fmt.Println("setresuid:", err)
		return 1, true
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		fmt.Println("socket:", err)
		return 1, true
	}
	defer syscall.Close(fd)
	sa := &syscall.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	if err := syscall.Connect(fd, sa); err != nil {
		fmt.Println("refused", err)
		return 0, true
	}
	fmt.Println("connected")
	return 0, true
}

// connectAs runs the connect helper with effective uid uid, as a process
// named "euid<uid>" in the events, and returns its output.
func (h *harness) connectAs(t *testing.T, uid int, addr string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s", connectHelperEnv, uid, addr))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(cmd.Process.Pid)] = fmt.Sprintf("euid%d", uid)
	h.mu.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("connect helper as euid %d: %v: %s", uid, err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// dataPolicy reports connections to port %[3]s with the caller's euid and
// comm (data: from the current task), for callers whose euid is not 0.
const dataPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "data-euid"
spec:
  kprobes:
  - call: "security_socket_connect"
    syscall: false
    args:
    - index: 1
      type: "sockaddr"
    data:
    - source: "current_task"
      type: "uint32"
      resolve: "cred.euid.val"
      label: "euid"
    - source: "current_task"
      type: "string"
      resolve: "comm"
    selectors:
    - matchArgs:
      - index: 1
        operator: "SPort"
        values:
        - "%[3]s"
      matchData:
      - index: 0
        operator: "NotEqual"
        values:
        - "0"
`

// data: entries read from the current task are reported in the event's
// data field, with their labels, and matchData filters on them in the
// kernel: a connection as euid 0 is not reported, one as euid 65534 is,
// with the uid read from the task's credentials.
func TestDataCurrentTask(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	h.loadWith(t, dataPolicy, compiler.MechKprobe, strconv.Itoa(port))
	if out := h.connectAs(t, 0, ln.Addr().String()); out != "connected" {
		t.Fatalf("euid 0: %s", out)
	}
	if out := h.connectAs(t, 65534, ln.Addr().String()); out != "connected" {
		t.Fatalf("euid 65534: %s", out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	comm := self[strings.LastIndex(self, "/")+1:]
	if len(comm) > 15 {
		comm = comm[:15]
	}
	evs := h.events(t)
	wantEvents(t, evs, fmt.Sprintf("euid65534 security_socket_connect POST sockaddr:AF_INET/127.0.0.1:%d", port))
	data := evs[0].kprobe.GetData()
	if got, want := argsString(data), "uint:65534 string:"+comm; got != want || data[0].GetLabel() != "euid" || data[1].GetLabel() != "" {
		t.Fatalf("data %v (%s), want %s, the first labelled euid", data, got, want)
	}
}

// cve-2026-65960.yaml, Tetragon's example, with its name in lower case
// (the example's upper-case name is invalid, for Tetragon too) and its
// port replaced by a test listener's: a connection from the host's cgroup
// namespace is refused with EPERM (NotifyEnforcer argError -1 at
// security_socket_connect, one of the enforcer's calls) and reported, with
// action NotifyEnforcer, when its euid is not 0; as euid 0 it goes
// through, unreported.
func TestDataCVEExample(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	testutil.RequireFeature(t, "fmod_ret")
	h := newHarness(t, compiler.MechFmodRet, testutil.Kernel(t).Map())
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	text, err := os.ReadFile("../../test/testdata/tetragon/examples/tracingpolicy/cves/cve-2026-65960.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(text), "name: CVE-2026-65960", "name: cve-2026-65960", 1)
	s = strings.ReplaceAll(s, "54321", strconv.Itoa(port))
	ps, err := tp.Parse("cve-2026-65960.yaml", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadPolicy(ps[0]); err != nil {
		t.Fatal(err)
	}
	if got := h.mechanismOf(t, "cve-2026-65960"); got != compiler.MechFmodRet {
		t.Fatalf("served by %s, want %s", got, compiler.MechFmodRet)
	}
	if out := h.connectAs(t, 0, ln.Addr().String()); out != "connected" {
		t.Fatalf("euid 0: %s", out)
	}
	if out := h.connectAs(t, 1000, ln.Addr().String()); out != "refused "+syscall.EPERM.Error() {
		t.Fatalf("euid 1000: %s, want refused with EPERM", out)
	}
	evs := h.events(t)
	wantEvents(t, evs, fmt.Sprintf("euid1000 security_socket_connect NOTIFYENFORCER sockaddr:AF_INET/127.0.0.1:%d", port))
	if data := evs[0].kprobe.GetData(); argsString(data) != "uint:1000" || data[0].GetLabel() != "euid" {
		t.Fatalf("data %v, want the euid 1000 labelled euid", data)
	}
}
