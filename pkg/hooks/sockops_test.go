package hooks

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
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
		runSockCasesOn(t, MechTracepoint, "tcp4", ln, hook, 6, func(int, int) []sockCase {
			return []sockCase{
				{"SPortPriv", nil, true},
				{"NotSPortPriv", nil, false},
				{"NotSportPriv", nil, false},
			}
		})
	})
	t.Run("ephemeral", func(t *testing.T) {
		runSockCases(t, MechTracepoint, "tcp4", hook, 6, func(int, int) []sockCase {
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
		runSockCasesOn(t, MechKprobe, "tcp4", ln, sock, 0, func(int, int) []sockCase {
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
		runSockCases(t, MechTracepoint, "tcp4", hook, 6, func(port, _ int) []sockCase {
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
		runSockCases(t, MechSyscallTracepoint, "tcp4", sys, 1, func(port, _ int) []sockCase {
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
		runSockCases(t, MechTracepoint, "tcp6", hook, 6, func(port, _ int) []sockCase {
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
	runSockCases(t, MechKprobe, "tcp4", hook, 0, func(port, sport int) []sockCase {
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
	runSockCases(t, MechKprobe, "tcp4", hook, 0, func(_, sport int) []sockCase {
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

// The compiled filter entries, as the kernel gets them.
// parseAndCompile compiles a filter on arg of declared type typ as the
// parser and the compiler do, each value parsed by the parser; a value the
// parser refuses is reported as the operator's.
func parseAndCompile(arg sensor.Arg, typ tp.ArgType, op string, values []string) (sensor.Match, error) {
	m := tp.ArgSelector{Operator: tp.Operator(op), ArgType: typ, Values: values}
	for _, v := range values {
		if err := m.ParseValue(v); err != nil {
			return sensor.Match{}, fmt.Errorf("operator %s: %w", op, err)
		}
	}
	return compileMatch(arg, 0, m)
}

func TestCompileSockMatch(t *testing.T) {
	sock := sensor.Arg{Source: sensor.SrcRegSock, Kind: sensor.KindPath}
	sockaddr := sensor.Arg{Source: sensor.SrcRegSockaddr, Kind: sensor.KindPath}
	socket := sensor.Arg{Source: sensor.SrcRegSocket, Kind: sensor.KindPath}
	for _, tc := range []struct {
		arg    sensor.Arg
		op     string
		values []string
		want   string // the compiled entry, or the error
	}{
		{sock, "DAddr", []string{"127.0.0.1/8", "fd00::1/8"}, "op 12 ints [] prefixes [127.0.0.0/8 fd00::/8]"},
		{sock, "NotSAddr", []string{"10.1.2.3"}, "op 11 ints [] prefixes [10.1.2.3/32]"},
		{sock, "DPort", []string{"80", "1000:2000"}, fmt.Sprintf("op 16 ints [%d %d] prefixes []", 80|80<<32, 1000|2000<<32)},
		{sock, "Protocol", []string{"IPPROTO_TCP", "17"}, fmt.Sprintf("op 18 ints [%d %d] prefixes []", 6|6<<32, 17|17<<32)},
		{sock, "State", []string{"TCP_SYN_SENT"}, fmt.Sprintf("op 20 ints [%d] prefixes []", 2|2<<32)},
		{socket, "DPort", []string{"443"}, fmt.Sprintf("op 16 ints [%d] prefixes []", 443|443<<32)},
		{socket, "NotDAddr", []string{"::1"}, "op 13 ints [] prefixes [::1/128]"},
		{sockaddr, "Family", []string{"AF_INET6"}, fmt.Sprintf("op 19 ints [%d] prefixes []", 10|10<<32)},
		{sockaddr, "DAddr", []string{"127.0.0.1"}, "operator DAddr does not apply to a sockaddr argument: it has one address and port, which Tetragon matches with SAddr, NotSAddr, SPort, NotSPort (and Family)"},
		{sensor.Arg{Kind: sensor.KindInt}, "DPort", []string{"80"}, "operator DPort needs a sock, socket, skb or sockaddr argument read by this mechanism"},
		{sock, "DAddr", []string{"127.0.0.1/33"}, `operator DAddr: "127.0.0.1/33" is not an IPv4 or IPv6 CIDR (as 127.0.0.0/8 or fd00::/8)`},
		{sock, "DPort", []string{"2000:1000"}, `operator DPort: port range "2000:1000" is empty: 2000 is above 1000`},
		{sock, "DPort", []string{"65536"}, `operator DPort: "65536" is not a port (0-65535) or a port range (lo:hi)`},
		{sock, "State", []string{"TCP_SYN"}, `operator State: "TCP_SYN" is not a TCP state (TCP_ESTABLISHED, TCP_SYN_SENT, ... or a number)`},
		{sock, "SPort", []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}, "operator SPort: 9 values, at most 8 in the kernel (addresses have no such limit)"},
	} {
		cm, err := parseAndCompile(tc.arg, tp.TypeSock, tc.op, tc.values)
		got := fmt.Sprintf("op %d ints %v prefixes %v", cm.Op, cm.Ints, cm.Prefixes)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s %v: got\n%s\nwant\n%s", tc.op, tc.values, got, tc.want)
		}
	}
}

// policies/examples/tcp-connect.yaml drops connections to loopback in the
// kernel: a connection to a loopback listener matches its DAddr selector
// (NoPost), so it is counted as matched and nothing is posted.
func TestTcpConnectExample(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, MechKprobe, testutil.Kernel(t).Map())
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
