package hooks

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

const sockPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "connect"
spec:
  kprobes:
  - call: "security_socket_connect"
    syscall: false
    args:
    - index: 1
      type: "sockaddr"
  - call: "tcp_connect"
    syscall: false
    args:
    - index: 0
      type: "sock"
`

// sock and sockaddr arguments: a connection to a loopback listener is
// reported with its addresses and ports, first as the address connect(2)
// was given, then as the socket sending its SYN.
func TestSockArguments(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	ps := h.parse(t, sockPolicy, "")
	if err := h.m.LoadPolicy(ps); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sport := c.LocalAddr().(*net.TCPAddr).Port
	c.Close()
	var got []string
	for _, e := range h.events(t) {
		// the test's other connections, if any, are not this one's
		if strings.Contains(e.text, fmt.Sprint(port)) {
			got = append(got, e.text)
		}
	}
	want := []string{
		fmt.Sprintf("test security_socket_connect POST sockaddr:AF_INET/127.0.0.1:%d", port),
		fmt.Sprintf("test tcp_connect POST sock:AF_INET/SOCK_STREAM/IPPROTO_TCP/127.0.0.1:%d->127.0.0.1:%d/TCP_SYN_SENT", sport, port),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const socketPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "getpeername"
spec:
  kprobes:
  - call: "security_socket_getpeername"
    syscall: false
    args:
    - index: 0
      type: "socket"
`

// socket arguments are reported as their sock: getpeername(2) on a
// connected loopback socket gives its addresses, ports and state.
func TestSocketArgument(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	if err := h.m.LoadPolicy(h.parse(t, socketPolicy, "")); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sport := c.LocalAddr().(*net.TCPAddr).Port
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Control(func(fd uintptr) { _, err = syscall.Getpeername(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("test security_socket_getpeername POST sock:AF_INET/SOCK_STREAM/IPPROTO_TCP/127.0.0.1:%d->127.0.0.1:%d/TCP_ESTABLISHED", sport, port)
	n := 0
	for _, e := range h.events(t) {
		// Dial calls getpeername too; other connections are not this one's
		if !strings.Contains(e.text, fmt.Sprint(":", port)) {
			continue
		}
		if e.text != want {
			t.Fatalf("event %q, want %q", e.text, want)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no event %q", want)
	}
}
