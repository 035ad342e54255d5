package hooks

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// sockCase is one socket-operator filter and whether a connection to a
// loopback listener must match it.
type sockCase struct {
	op     string
	values []string
	match  bool
}

// sockOpsPolicy is a hook (%[3]s: its list entry, with args) whose one
// selector has matchArgs on argument %[4]d with operator %[5]s and values
// %[6]s.
const sockOpsPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "sockops"
spec:
%[3]s
    selectors:
    - matchArgs:
      - index: %[4]d
        operator: "%[5]s"
        values: [%[6]s]
`

// runSockCases loads hook with each case's filter in turn, connects to a
// loopback listener of network (tcp4 or tcp6) and checks that the
// connection was reported exactly when the case says it matches. Only
// loopback is ever connected to: a case that must not match names other
// addresses without sending anything there.
func runSockCases(t *testing.T, mech, network, hook string, index int, cases func(port, sport int) []sockCase) {
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("kernel lacks %s loopback (IPv6 disabled?): %v", network, err)
	}
	defer ln.Close()
	runSockCasesOn(t, mech, network, ln, hook, index, cases)
}

// runSockCasesOn is runSockCases with connections to listener ln.
func runSockCasesOn(t *testing.T, mech, network string, ln net.Listener, hook string, index int, cases func(port, sport int) []sockCase) {
	h := newHarness(t, mech, testutil.Kernel(t).Map())
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	for i := 0; ; i++ {
		// a bound source port, so that SPort on a sock is known
		// beforehand; a new one each time, as the last one may wait in
		// TIME_WAIT
		sport := freePort(t, network)
		cs := cases(port, sport)
		if i >= len(cs) {
			break
		}
		c := cs[i]
		name := fmt.Sprintf("%s %s", c.op, strings.Join(c.values, ","))
		quoted := "" // values: [], as the *PortPriv operators take none
		if len(c.values) > 0 {
			quoted = `"` + strings.Join(c.values, `", "`) + `"`
		}
		if err := h.m.LoadPolicy(h.parse(t, sockOpsPolicy, mech, hook, index, c.op, quoted)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if i == 0 {
			t.Logf("served by %s", h.mechanismOf(t, "sockops"))
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ln.Addr().(*net.TCPAddr).IP, Port: sport}}
		conn, err := d.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conn.Close()
		var got []string
		for _, e := range h.events(t) {
			if strings.Contains(e.text, fmt.Sprint(port)) {
				got = append(got, e.text)
			}
		}
		if err := h.m.Unload("sockops"); err != nil {
			t.Fatal(err)
		}
		if c.match && len(got) != 1 || !c.match && len(got) != 0 {
			t.Errorf("%s: events %q, want a match: %v", name, got, c.match)
		} else {
			t.Logf("%s: %d events, as expected", name, len(got))
		}
	}
}

// privListener listens on a free privileged loopback port (below 1024),
// which the test may bind as root.
func privListener(t *testing.T) net.Listener {
	for port := 1023; port >= 900; port-- {
		if ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return ln
		}
	}
	t.Fatal("no free loopback port between 900 and 1023")
	return nil
}

// connectHook is syscalls/sys_enter_connect with its uservaddr field
// (field 6) read as a sockaddr.
const connectHook = `  tracepoints:
  - subsystem: "syscalls"
    event: "sys_enter_connect"
    args:
    - index: 6
      type: "sockaddr"`

// Tetragon's *PortPriv operators: the port is below 1024. Connections to a
// listener on a privileged port and to one on an ephemeral port, with the
// port in connect(2)'s sockaddr (SPort there, as in Tetragon).
func TestPrivPortOperators(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	hook := connectHook
	t.Run("privileged", func(t *testing.T) {
		ln := privListener(t)
		defer ln.Close()
		runSockCasesOn(t, compiler.MechTracepoint, "tcp4", ln, hook, 6, func(int, int) []sockCase {
			return []sockCase{
				{"SPortPriv", nil, true},
				{"NotSPortPriv", nil, false},
				{"NotSportPriv", nil, false},
			}
		})
	})
	t.Run("ephemeral", func(t *testing.T) {
		runSockCases(t, compiler.MechTracepoint, "tcp4", hook, 6, func(int, int) []sockCase {
			return []sockCase{
				{"SPortPriv", nil, false},
				{"NotSPortPriv", nil, true},
			}
		})
	})
	// a sock through a kprobe: the destination's port is privileged, the
	// bound source's is not
	t.Run("sock", func(t *testing.T) {
		testutil.RequireFeature(t, "kprobe")
		ln := privListener(t)
		defer ln.Close()
		sock := `  kprobes:
  - call: "tcp_connect"
    syscall: false
    args:
    - index: 0
      type: "sock"`
		runSockCasesOn(t, compiler.MechKprobe, "tcp4", ln, sock, 0, func(int, int) []sockCase {
			return []sockCase{
				{"DPortPriv", nil, true},
				{"NotDPortPriv", nil, false},
				{"SPortPriv", nil, false},
				{"NotSPortPriv", nil, true},
			}
		})
	})
}

// freePort returns a loopback port no socket uses right now.
func freePort(t *testing.T, network string) int {
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// connect(2)'s socket address, read from syscalls/sys_enter_connect's
// uservaddr field (field 6) on any kernel with tracepoints: the address and
// port a process connects to are a sockaddr's SAddr and SPort, as in
// Tetragon.
func TestSockaddrOperators(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tracepoint")
	hook := connectHook
	t.Run("ipv4", func(t *testing.T) {
		runSockCases(t, compiler.MechTracepoint, "tcp4", hook, 6, func(port, _ int) []sockCase {
			p := fmt.Sprint(port)
			return []sockCase{
				{"SPort", []string{p}, true},
				{"SPort", []string{fmt.Sprint(port + 1)}, false},
				{"SPort", []string{fmt.Sprintf("%d:%d", port-1, port+1)}, true},
				{"NotSPort", []string{p}, false},
				{"NotSPort", []string{fmt.Sprint(port + 1), "1"}, true},
				{"SAddr", []string{"127.0.0.1/8"}, true},
				{"SAddr", []string{"10.0.0.0/8", "::1"}, false},
				{"NotSAddr", []string{"10.0.0.0/8"}, true},
				{"NotSAddr", []string{"127.0.0.1"}, false},
				{"Family", []string{"AF_INET"}, true},
				{"Family", []string{"AF_INET6", "1"}, false},
			}
		})
	})
	// the same through a syscall hook: the syscall-tracepoint mapping
	// where there are no kprobes, else a kprobe on the syscall
	t.Run("sys_connect", func(t *testing.T) {
		sys := `  kprobes:
  - call: "sys_connect"
    syscall: true
    args:
    - index: 0
      type: "int"
    - index: 1
      type: "sockaddr"`
		runSockCases(t, compiler.MechSyscallTracepoint, "tcp4", sys, 1, func(port, _ int) []sockCase {
			return []sockCase{
				{"SPort", []string{fmt.Sprint(port)}, true},
				{"NotSPort", []string{fmt.Sprint(port)}, false},
				{"SAddr", []string{"127.0.0.0/8"}, true},
				{"NotSAddr", []string{"127.0.0.0/8"}, false},
				{"Family", []string{"AF_INET6"}, false},
			}
		})
	})
	t.Run("ipv6", func(t *testing.T) {
		runSockCases(t, compiler.MechTracepoint, "tcp6", hook, 6, func(port, _ int) []sockCase {
			return []sockCase{
				{"SAddr", []string{"::1/128"}, true},
				{"SAddr", []string{"127.0.0.0/8", "fd00::/8"}, false},
				{"NotSAddr", []string{"::/1"}, false},
				{"SPort", []string{fmt.Sprint(port)}, true},
				{"Family", []string{"10"}, true},
			}
		})
	})
}

// tcp_connect's struct sock through a kprobe: both ends' addresses and
// ports, the protocol and the TCP state while the SYN is sent.
func TestSockOperators(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	hook := `  kprobes:
  - call: "tcp_connect"
    syscall: false
    args:
    - index: 0
      type: "sock"`
	runSockCases(t, compiler.MechKprobe, "tcp4", hook, 0, func(port, sport int) []sockCase {
		return []sockCase{
			{"DAddr", []string{"127.0.0.1/8"}, true},
			{"DAddr", []string{"10.0.0.0/8"}, false},
			{"NotDAddr", []string{"127.0.0.0/8"}, false},
			{"NotDAddr", []string{"10.0.0.0/8", "::/0"}, true},
			{"SAddr", []string{"127.0.0.1/32"}, true},
			{"DPort", []string{fmt.Sprint(port)}, true},
			{"NotDPort", []string{fmt.Sprint(port)}, false},
			{"SPort", []string{fmt.Sprint(sport)}, true},
			{"NotSPort", []string{fmt.Sprint(sport)}, false},
			{"Protocol", []string{"IPPROTO_TCP"}, true},
			{"Protocol", []string{"IPPROTO_UDP"}, false},
			{"Family", []string{"AF_INET"}, true},
			{"State", []string{"TCP_SYN_SENT"}, true},
			{"State", []string{"TCP_ESTABLISHED"}, false},
		}
	})
}

// A struct socket through a kprobe, read as its sock:
// security_socket_connect sees the socket before the connection, bound to
// its source (the test binds it), not yet to the destination. The
// sockaddr argument puts the listener's port in the event.
func TestSocketOperators(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	hook := `  kprobes:
  - call: "security_socket_connect"
    syscall: false
    args:
    - index: 0
      type: "socket"
    - index: 1
      type: "sockaddr"`
	runSockCases(t, compiler.MechKprobe, "tcp4", hook, 0, func(_, sport int) []sockCase {
		return []sockCase{
			{"SAddr", []string{"127.0.0.1/32"}, true},
			{"NotSAddr", []string{"127.0.0.0/8"}, false},
			{"SPort", []string{fmt.Sprint(sport)}, true},
			{"NotSPort", []string{fmt.Sprint(sport)}, false},
			{"DAddr", []string{"127.0.0.0/8"}, false},
			{"NotDAddr", []string{"10.0.0.0/8"}, true},
			{"DPort", []string{"0"}, true},
			{"Protocol", []string{"IPPROTO_TCP"}, true},
			{"Protocol", []string{"IPPROTO_UDP"}, false},
			{"Family", []string{"AF_INET"}, true},
			{"Family", []string{"AF_INET6"}, false},
			{"State", []string{"TCP_CLOSE"}, true},
			{"State", []string{"TCP_ESTABLISHED"}, false},
		}
	})
}

// policies/examples/tcp-connect.yaml drops connections to loopback in the
// kernel: a connection to a loopback listener matches its DAddr selector
// (NoPost), so it is counted as matched and nothing is posted.
func TestTcpConnectExample(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	ps, err := tp.ParseFile("../../policies/examples/tcp-connect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadPolicy(ps[0]); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("no %s loopback: %v", network, err)
			continue
		}
		before := h.stats(t).Matched
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		ln.Close()
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		for _, e := range h.events(t) {
			if strings.Contains(e.text, port) {
				t.Errorf("%s: connection to loopback posted: %s", network, e.text)
			}
		}
		if after := h.stats(t).Matched; after <= before {
			t.Errorf("%s: matched %d before the connection, %d after: the loopback selector did not match", network, before, after)
		}
	}
}
