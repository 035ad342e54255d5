package hooks

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// udpPort returns a loopback UDP port no socket uses right now.
func udpPort(t *testing.T) int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// skb arguments through a kprobe on ip_output, which an IPv4 datagram
// passes through once in the sending process: the packet's addresses,
// ports and protocol, matched with the socket operators.
func TestSkbOperators(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.LocalAddr().(*net.UDPAddr).Port
	hook := `  kprobes:
  - call: "ip_output"
    syscall: false
    args:
    - index: 2
      type: "skb"`
	for i := 0; ; i++ {
		sport := udpPort(t)
		p, s := fmt.Sprint(port), fmt.Sprint(sport)
		cases := []sockCase{
			{"DAddr", []string{"127.0.0.1/32"}, true},
			{"DAddr", []string{"10.0.0.0/8", "::1"}, false},
			{"NotDAddr", []string{"127.0.0.0/8"}, false},
			{"SAddr", []string{"127.0.0.0/8"}, true},
			{"DPort", []string{p}, true},
			{"DPort", []string{fmt.Sprintf("%d:%d", port+1, port+10)}, false},
			{"NotDPort", []string{p}, false},
			{"SPort", []string{s}, true},
			{"Protocol", []string{"IPPROTO_UDP"}, true},
			{"Protocol", []string{"IPPROTO_TCP"}, false},
			{"Family", []string{"AF_INET"}, true},
			{"Family", []string{"AF_INET6"}, false},
		}
		if i >= len(cases) {
			break
		}
		c := cases[i]
		name := fmt.Sprintf("%s %s", c.op, strings.Join(c.values, ","))
		if err := h.m.LoadPolicy(h.parse(t, sockOpsPolicy, compiler.MechKprobe, hook, 2, c.op, `"`+strings.Join(c.values, `", "`)+`"`)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sport}, ln.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		var got []string
		for _, e := range h.events(t) {
			if strings.Contains(e.text, ":"+p) {
				got = append(got, e.text)
			}
		}
		if err := h.m.Unload("sockops"); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("test ip_output POST skb:AF_INET/IPPROTO_UDP/127.0.0.1:%d->127.0.0.1:%d/len=29", sport, port)
		switch {
		case c.match && (len(got) != 1 || got[0] != want):
			t.Errorf("%s: events %q, want [%q]", name, got, want)
		case !c.match && len(got) != 0:
			t.Errorf("%s: events %q, want none", name, got)
		default:
			t.Logf("%s: %d events, as expected", name, len(got))
		}
	}
}

// TrackSock on sk_alloc's return value: the test creates a UDP socket and
// hands it to sh, which writes to it. udp_sendmsg then runs in sh, and
// its event is attributed to the process that created (and tracked) the
// socket; with returnArgAction Post (no tracking) to sh. UntrackSock on
// __sk_free empties the map again once the socket is closed.
func TestTrackSock(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct{ action, want string }{{"TrackSock", "test"}, {"Post", "sh"}} {
		sport := udpPort(t)
		if err := h.m.LoadPolicy(h.parse(t, testutil.TrackSockPolicy, "", os.Getpid(), sport, c.action)); err != nil {
			t.Fatalf("%s: %v", c.action, err)
		}
		conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sport}, ln.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		f, err := conn.File()
		if err != nil {
			t.Fatal(err)
		}
		tracked := h.tracked(t)
		cmd := exec.Command("sh", "-c", "echo x >&3")
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		h.pids[uint32(cmd.Process.Pid)] = "sh"
		h.mu.Unlock()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("sh writing to the socket: %v", err)
		}
		f.Close()
		conn.Close()
		var got []string
		for _, e := range h.events(t) {
			got = append(got, e.text)
		}
		want := fmt.Sprintf("%s udp_sendmsg POST sock:AF_INET/SOCK_DGRAM/IPPROTO_UDP/127.0.0.1:%d->127.0.0.1:%d/TCP_ESTABLISHED", c.want, sport, ln.LocalAddr().(*net.UDPAddr).Port)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: events %q, want [%q]", c.action, got, want)
		} else {
			t.Logf("%s: %s, as expected", c.action, got[0])
		}
		if c.action == "TrackSock" {
			if tracked == 0 {
				t.Errorf("TrackSock: no socket tracked while the test's socket was open")
			}
			// __sk_free may run after close returns (RCU, the last
			// reference): wait for it
			deadline := time.Now().Add(5 * time.Second)
			for h.tracked(t) != 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := h.tracked(t); n != 0 {
				t.Errorf("UntrackSock: %d sockets still tracked after the test's socket was closed", n)
			} else {
				t.Logf("TrackSock: %d sockets tracked while open, none after close", tracked)
			}
		}
		if err := h.m.Unload("socktrack"); err != nil {
			t.Fatal(err)
		}
	}
}

// tracked counts the sockets in the manager's tracking map.
func (h *harness) tracked(t *testing.T) int {
	t.Helper()
	st, err := h.m.sockTrackMap()
	if err != nil {
		t.Fatal(err)
	}
	var k, v [8]byte
	n := 0
	it := st.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
