package hooks

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// dnsQuery builds a DNS message with one question: header (id, RD set,
// QDCOUNT 1), the name's labels, QTYPE and class IN.
func dnsQuery(id, qtype uint16, labels ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, 1)
}

// dnsPolicy is dns-egress.yaml's hooks and selectors with the test's
// ports (%[3]d IPv4, %[4]d IPv6) for 53.
const dnsPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "dns"
spec:
  kprobes:
  - call: "udp_sendmsg"
    syscall: false
    args:
    - index: 0
      type: "sock"
    - index: 1
      type: "dns"
      label: "dns"
    selectors:
    - matchArgs:
      - index: 0
        operator: "DPort"
        values:
        - "%[3]d"
      - index: 1
        operator: "Postfix"
        values:
        - "example.com"
  - call: "udpv6_sendmsg"
    syscall: false
    args:
    - index: 0
      type: "sock"
    - index: 1
      type: "dns"
      label: "dns"
    selectors:
    - matchArgs:
      - index: 0
        operator: "DPort"
        values:
        - "%[4]d"
      - index: 1
        operator: "Postfix"
        values:
        - "example.com"
`

// loadKprobes loads a policy of several hooks (loadWith checks one) and
// checks that kprobes serve each.
func loadKprobes(t *testing.T, h *harness, policy string, extra ...any) {
	t.Helper()
	name, err := h.tryLoad(t, policy, compiler.MechKprobe, extra...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range h.m.Status() {
		if p.Name != name {
			continue
		}
		for _, k := range p.Hooks {
			if k.Mechanism != compiler.MechKprobe {
				t.Fatalf("policy %s: %s is served by %s, want %s", name, k.Call, k.Mechanism, compiler.MechKprobe)
			}
		}
		return
	}
	t.Fatalf("policy %s is not loaded: %+v", name, h.m.Status())
}

// dnsEvents returns the events' function, destination and dns argument.
func dnsEvents(t *testing.T, h *harness) []string {
	t.Helper()
	var out []string
	for _, e := range h.events(t) {
		args := e.kprobe.GetArgs()
		if len(args) != 2 || args[0].GetSockArg() == nil || args[1].GetDnsArg() == nil {
			t.Fatalf("event %q: want a sock and a dns argument", e.text)
		}
		if args[1].GetLabel() != "dns" {
			t.Errorf("event %q: dns argument labelled %q", e.text, args[1].GetLabel())
		}
		sk := args[0].GetSockArg()
		out = append(out, fmt.Sprintf("%s %s %s", e.kprobe.GetFunctionName(),
			net.JoinHostPort(sk.GetDaddr(), fmt.Sprint(sk.GetDport())), argsString(args[1:])))
	}
	return out
}

func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// udpPair returns a loopback listener on network's address (port 0: any)
// and a socket connected to it, closed when the test ends.
func udpPair(t *testing.T, network, addr string) (*net.UDPConn, *net.UDPConn) {
	t.Helper()
	ln, c, err := dialUDP(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); c.Close() })
	return ln, c
}

// dialUDP is udpPair for a goroutine other than the test's, which must not
// call t.Fatal; the caller closes both.
func dialUDP(network, addr string) (*net.UDPConn, *net.UDPConn, error) {
	la, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.ListenUDP(network, la)
	if err != nil {
		return nil, nil, err
	}
	c, err := net.DialUDP(network, nil, ln.LocalAddr().(*net.UDPAddr))
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, c, nil
}

func send(t *testing.T, c *net.UDPConn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// The dns argument on udp_sendmsg and udpv6_sendmsg with dns-egress.yaml's
// selectors: queries for names ending in example.com, sent with write(2)
// (ITER_UBUF), sendmsg(2) with one iovec (ITER_IOVEC before 6.4, ITER_UBUF
// since) and with two, the question in the first (ITER_IOVEC), are
// reported with their question, lowercased; a query for example.org, a
// payload that is no DNS message and malformed questions make no event,
// since the name the kernel reads for them is empty and matches nothing.
func TestDnsArgument(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	ln4, c4 := udpPair(t, "udp4", "127.0.0.1:0")
	ln6, c6 := udpPair(t, "udp6", "[::1]:0")
	p4, p6 := ln4.LocalAddr().(*net.UDPAddr).Port, ln6.LocalAddr().(*net.UDPAddr).Port
	loadKprobes(t, h, dnsPolicy, p4, p6)
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()

	send(t, c4, dnsQuery(0x1234, 1, "www", "example", "com"))
	if _, _, err := c4.WriteMsgUDP(dnsQuery(7, 28, "WWW", "Example", "COM"), nil, nil); err != nil {
		t.Fatal(err)
	}
	raw, err := c4.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Write(func(fd uintptr) bool {
		// the question in the first of two buffers
		_, serr = unix.SendmsgBuffers(int(fd), [][]byte{dnsQuery(8, 15, "mail", "example", "com"), []byte("trailing")}, nil, nil, 0)
		return true
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	send(t, c4, dnsQuery(9, 1, "www", "example", "org"))
	send(t, c4, []byte("GET /example.com HTTP/1.1\r\n\r\n"))
	hdr := dnsQuery(10, 1)[:12]
	// a compression pointer (to offset 12) where the name starts
	send(t, c4, append(append([]byte{}, hdr...), 0xc0, 12, 0, 1, 0, 1))
	// a name running past the payload
	send(t, c4, append(append([]byte{}, hdr...), 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm'))
	// no QTYPE and QCLASS after the name
	q := dnsQuery(11, 1, "example", "com")
	send(t, c4, q[:len(q)-4])
	// no question (QDCOUNT 0)
	q = dnsQuery(12, 1, "example", "com")
	q[5] = 0
	send(t, c4, q)
	send(t, c6, dnsQuery(13, 28, "ipv6", "example", "com"))

	d4 := fmt.Sprintf("127.0.0.1:%d", p4)
	sameLines(t, dnsEvents(t, h), []string{
		"udp_sendmsg " + d4 + " dns:www.example.com/A/class=1/id=4660/response=false/parsed=true",
		"udp_sendmsg " + d4 + " dns:www.example.com/AAAA/class=1/id=7/response=false/parsed=true",
		"udp_sendmsg " + d4 + " dns:mail.example.com/MX/class=1/id=8/response=false/parsed=true",
		fmt.Sprintf("udpv6_sendmsg [::1]:%d dns:ipv6.example.com/AAAA/class=1/id=13/response=false/parsed=true", p6),
	})
}

const dnsAnyPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "dns-any"
spec:
  kprobes:
  - call: "udp_sendmsg"
    syscall: false
    args:
    - index: 0
      type: "sock"
    - index: 1
      type: "dns"
      label: "dns"
    selectors:
    - matchArgs:
      - index: 0
        operator: "DPort"
        values:
        - "%[3]d"
`

// Without a name selector every send to the port is reported: a DNS
// response as such, and a payload that is no DNS question with parsed
// false and no name, never bytes of the payload read as one.
func TestDnsArgumentNotDNS(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	ln4, c4 := udpPair(t, "udp4", "127.0.0.1:0")
	p4 := ln4.LocalAddr().(*net.UDPAddr).Port
	h.loadWith(t, dnsAnyPolicy, compiler.MechKprobe, p4)
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()

	resp := dnsQuery(0x4242, 16, "txt", "example", "net")
	resp[2] |= 0x80 // QR: a response
	send(t, c4, resp)
	send(t, c4, []byte("hello, this is not DNS at all"))
	hdr := dnsQuery(5, 1)[:12]
	send(t, c4, append(append([]byte{}, hdr...), 0xc0, 12, 0, 1, 0, 1))
	send(t, c4, []byte{1, 2, 3})
	// a label byte that is NUL
	send(t, c4, append(append([]byte{}, hdr...), 3, 'a', 0, 'b', 0, 0, 1, 0, 1))
	// the longest name (255 bytes in wire format, 253 characters), and
	// one a character longer
	l := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	longest := []string{l('a', 63), l('b', 63), l('c', 63), l('d', 61)}
	send(t, c4, dnsQuery(20, 1, longest...))
	send(t, c4, dnsQuery(21, 1, l('a', 63), l('b', 63), l('c', 63), l('d', 62)))

	d4 := fmt.Sprintf("127.0.0.1:%d", p4)
	sameLines(t, dnsEvents(t, h), []string{
		"udp_sendmsg " + d4 + " dns:txt.example.net/TXT/class=1/id=16962/response=true/parsed=true",
		// QDCOUNT is "o," but no name follows ('i', 105, is no label
		// length); the id and QR bit are the first bytes'
		"udp_sendmsg " + d4 + " dns://class=0/id=26725/response=false/parsed=false",
		"udp_sendmsg " + d4 + " dns://class=0/id=5/response=false/parsed=false",
		"udp_sendmsg " + d4 + " dns://class=0/id=0/response=false/parsed=false",
		"udp_sendmsg " + d4 + " dns://class=0/id=5/response=false/parsed=false",
		"udp_sendmsg " + d4 + " dns:" + strings.Join(longest, ".") + "/A/class=1/id=20/response=false/parsed=true",
		"udp_sendmsg " + d4 + " dns://class=0/id=21/response=false/parsed=false",
	})
}

// inNetns runs f on a thread in a new network namespace whose loopback is
// up: sockets f creates live there, so the test can use port 53 without
// reaching, or clashing with, a resolver of the machine's. The thread goes
// back to the test's network namespace afterwards: a locked goroutine that
// ends takes its thread with it, except the process's main thread, which
// the runtime keeps, and which /proc/self/ns/net (other tests' "own
// namespace", TestMatchNamespaces) shows.
func inNetns(t *testing.T, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		defer func() {
			// back in the test's namespace, the thread may serve others
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			errc <- err
			return
		}
		ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			errc <- fmt.Errorf("bringing lo up: %w", err)
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Tetragon's dns-egress.yaml as it is: queries to port 53 (in a network
// namespace of the test's own) for www.example.com, over IPv4 and IPv6,
// are reported; example.org's and a non-DNS payload to port 53 are not.
func TestDnsEgressExample(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	policy, err := os.ReadFile("../../test/testdata/tetragon/examples/tracingpolicy/dns-egress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	loadKprobes(t, h, string(policy))
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	var conns [4]*net.UDPConn
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	inNetns(t, func() (err error) {
		if conns[0], conns[1], err = dialUDP("udp4", "127.0.0.1:53"); err != nil {
			return err
		}
		conns[2], conns[3], err = dialUDP("udp6", "[::1]:53")
		return err
	})
	c4, c6 := conns[1], conns[3]
	send(t, c4, dnsQuery(1, 1, "www", "example", "com"))
	send(t, c4, dnsQuery(2, 1, "www", "example", "org"))
	send(t, c4, []byte("not a DNS message, example.com"))
	send(t, c6, dnsQuery(3, 28, "www", "example", "com"))
	got := dnsEvents(t, h)
	sameLines(t, got, []string{
		"udp_sendmsg 127.0.0.1:53 dns:www.example.com/A/class=1/id=1/response=false/parsed=true",
		"udpv6_sendmsg [::1]:53 dns:www.example.com/AAAA/class=1/id=3/response=false/parsed=true",
	})
}

// TestInNetnsRestores: after inNetns, whichever thread ran f (the main
// thread too, which the runtime never ends) is back in the test's network
// namespace, as /proc/self/ns/net and the children the test starts see it.
func TestInNetnsRestores(t *testing.T) {
	testutil.RequireRoot(t)
	before, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		inNetns(t, func() error {
			now, err := os.Readlink("/proc/thread-self/ns/net")
			if err == nil && now == before {
				err = fmt.Errorf("f ran in the test's own network namespace %s", now)
			}
			return err
		})
	}
	out, err := exec.Command("readlink", "/proc/self/ns/net").Output()
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Readlink("/proc/self/ns/net")
	if child := strings.TrimSpace(string(out)); after != before || child != before {
		t.Fatalf("network namespace before %s, after: the test's %s, a child's %s", before, after, child)
	}
}
