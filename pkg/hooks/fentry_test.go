package hooks

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// fentryPolicy hooks security_file_open through spec.fentries: cat of
// $DIR/kill is killed, cat of $DIR/data posted; %[3]s is "true" for a
// return probe (fexit) with its return value.
const fentryPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "fentry-open"
spec:
  fentries:
  - call: "security_file_open"
    syscall: false
    return: %[3]s
    args:
    - index: 0
      type: "file"
    returnArg:
      index: 0
      type: "int"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[2]s/kill"
      matchActions:
      - action: Sigkill
    - matchArgs:
      - index: 0
        operator: "Prefix"
        values:
        - "%[2]s/data"
`

// TestFentries runs spec.fentries hooks (Tetragon 1.6: the kprobe spec,
// served by fentry programs, fexit for return: true) on real workloads:
// the selectors match, kill and post as a kprobe's would, the events are
// process_kprobe events, and the return value comes with fexit's.
func TestFentries(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "fentry")
	testutil.RequireFeature(t, "fexit")
	feats := testutil.Kernel(t).Map()
	for _, tc := range []struct {
		ret, mech, suffix string
	}{{"false", compiler.MechFentry, ""}, {"true", compiler.MechFexit, " => int:0"}} {
		t.Run(tc.mech, func(t *testing.T) {
			h := newHarness(t, tc.mech, feats)
			writeFiles(t, h.dir, map[string]string{"kill": "k", "data": "secret", "other": "x"})
			h.loadWith(t, fentryPolicy, tc.mech, tc.ret)
			if st := h.m.Status(); st[0].Hooks[0].Kind != "fentry" {
				t.Errorf("listed as %q, want fentry", st[0].Hooks[0].Kind)
			}
			if _, killed := h.run(t, "cat", filepath.Join(h.dir, "kill")); !killed {
				t.Fatal("cat of the killed file was not killed")
			}
			if out, killed := h.run(t, "cat", filepath.Join(h.dir, "data")); killed || out != "secret" {
				t.Fatalf("cat data: %q killed=%v", out, killed)
			}
			if out, killed := h.run(t, "cat", filepath.Join(h.dir, "other")); killed || out != "x" {
				t.Fatalf("cat other: %q killed=%v", out, killed)
			}
			var got []string
			for _, e := range h.events(t) {
				text := e.text
				if e.ret != "" {
					text += " => " + e.ret
				}
				got = append(got, text)
				if e.kprobe == nil || e.kprobe.Mechanism != tc.mech {
					t.Errorf("event %q: not a process_kprobe event of mechanism %s: %+v", e.text, tc.mech, e.kprobe)
				}
			}
			want := []string{
				// Sigkill is sent at entry; the killed cat's open still
				// returns (fexit reports it)
				"cat security_file_open SIGKILL file:$DIR/kill" + tc.suffix,
				"cat security_file_open POST file:$DIR/data" + tc.suffix,
			}
			checkEvents(t, "cat kill, data, other", slices.Compact(got), want)
		})
	}
}

// Tetragon's fentry.yaml example, unchanged: tcp_connect (fexit, with the
// return value) and tcp_close (fentry) on a loopback connection the test
// makes, and nothing of sockets it did not touch.
func TestFentryExample(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "fentry")
	testutil.RequireFeature(t, "fexit")
	h := newHarness(t, "", testutil.Kernel(t).Map())
	ps, err := tp.ParseFile("../../test/testdata/tetragon/examples/tracingpolicy/fentry.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadPolicy(ps[0]); err != nil {
		t.Fatal(err)
	}
	mechs := map[string]string{}
	for _, hk := range h.m.Status()[0].Hooks {
		mechs[hk.Call] = hk.Kind + "/" + hk.Mechanism
	}
	if want := map[string]string{"tcp_connect": "fentry/fexit", "tcp_close": "fentry/fentry"}; !maps.Equal(mechs, want) {
		t.Fatalf("hooks %v, want %v", mechs, want)
	}
	h.mu.Lock()
	h.pids[uint32(os.Getpid())] = "test"
	h.mu.Unlock()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lport := ln.Addr().(*net.TCPAddr).Port
	c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	sport := c.LocalAddr().(*net.TCPAddr).Port
	s, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.Close()
	ln.Close()
	conn := fmt.Sprintf("sock:AF_INET/SOCK_STREAM/IPPROTO_TCP/127.0.0.1:%d->127.0.0.1:%d/", sport, lport)
	var connects, closes int
	var got []string
	for _, e := range h.events(t) {
		got = append(got, e.text+" => "+e.ret)
		switch {
		case strings.HasPrefix(e.text, "test tcp_connect POST "+conn+"TCP_SYN_SENT") && e.ret == "int:0":
			connects++
		case strings.HasPrefix(e.text, "test tcp_close POST "+conn):
			closes++
		}
	}
	// the client's socket connects once and is closed once; the accepted
	// and listening sockets are closed too (other addresses)
	if connects != 1 || closes != 1 {
		t.Fatalf("events:\n  %s\nwant one tcp_connect of %s (SYN_SENT, returning 0) and one tcp_close of it", strings.Join(got, "\n  "), conn)
	}
	t.Logf("events:\n  %s", strings.Join(got, "\n  "))
}

// Without fentry (or fexit, for return: true) spec.fentries is a load
// error naming the missing feature, and leaves nothing loaded.
func TestFentriesMissingFeature(t *testing.T) {
	testutil.RequireRoot(t)
	for _, c := range []struct {
		ret, missing string
		feats        map[string]bool
	}{
		{"false", "fentry", map[string]bool{"kprobe": true, "kretprobe": true}},
		{"true", "fexit", map[string]bool{"fentry": true}},
	} {
		h := newHarness(t, "", c.feats)
		_, err := h.tryLoad(t, fentryPolicy, "", c.ret)
		if err == nil || !strings.Contains(err.Error(), "security_file_open: fentries need "+c.missing+" programs") ||
			!strings.Contains(err.Error(), "(probe feature "+c.missing+")") {
			t.Errorf("return %s: error %v, want it to name probe feature %s", c.ret, err, c.missing)
		}
		if st := h.m.Status(); len(st) != 0 {
			t.Errorf("the refused policy left %+v", st)
		}
	}
}
