package hooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"github.com/tetragon-lite/tetragon/pkg/netaction"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// remotePolicy: opening canary requests %[3]s/canary (GetUrl), opening dns
// looks up canary.tetragon.test (DnsLookup), opening quiet requests
// %[3]s/quiet and makes no event (NoPost).
const remotePolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "remote-actions"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/canary"
      matchActions:
      - action: GetUrl
        argUrl: "%[3]s/canary"
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/dns"
      matchActions:
      - action: DnsLookup
        argFqdn: canary.tetragon.test
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
        - "%[2]s/quiet"
      matchActions:
      - action: GetUrl
        argUrl: "%[3]s/quiet"
      - action: NoPost
`

// GetUrl and DnsLookup on real opens: the matching opens reach the local
// HTTP and DNS servers, the others nothing; the events say GETURL and
// DNSLOOKUP, and NoPost leaves the request without an event.
func TestRemoteActions(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		var mu sync.Mutex
		var paths []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths = append(paths, r.URL.Path)
			mu.Unlock()
		}))
		defer srv.Close()
		dns := testutil.StartDNSServer(t)
		runner, err := netaction.New(zerolog.Nop(), netaction.Config{DNSServer: dns.Addr})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go runner.Run(ctx)

		h := newHarness(t, mech, testutil.Kernel(t).Map())
		h.m.EnableRemoteActions()
		h.build = hookevent.NewBuilder(zerolog.Nop(), runner)
		writeFiles(t, h.dir, map[string]string{"canary": "c", "dns": "d", "quiet": "q", "other": "o"})
		h.loadWith(t, remotePolicy, mech, srv.URL)
		for _, f := range []string{"canary", "dns", "quiet", "other"} {
			h.run(t, "cat", filepath.Join(h.dir, f))
		}
		events, silent := drainRemote(t, h)
		want := []string{"cat fd_install GETURL int:3 file:$DIR/canary", "cat fd_install DNSLOOKUP int:3 file:$DIR/dns"}
		if !slices.Equal(events, want) {
			t.Errorf("events\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
		}
		if silent != 1 {
			t.Errorf("%d records made no event, want 1 (the NoPost selector's)", silent)
		}

		deadline := time.Now().Add(10 * time.Second)
		for {
			st := runner.Stats()
			if st.Done+st.Failed >= 3 {
				if st != (netaction.Stats{Done: 3}) {
					t.Errorf("network actions %+v, want 3 done", st)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("network actions %+v, want 3 done", st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		got := slices.Sorted(slices.Values(paths))
		mu.Unlock()
		if !slices.Equal(got, []string{"/canary", "/quiet"}) {
			t.Errorf("HTTP server got %v, want /canary and /quiet", got)
		}
		for _, n := range dns.Names() {
			if n != "canary.tetragon.test" {
				t.Errorf("DNS server asked %q, want only canary.tetragon.test", n)
			}
		}
		if len(dns.Names()) == 0 {
			t.Error("the DNS server was never asked")
		}
	})
}

// drainRemote is harness.events for a policy with NoPost remote actions:
// it returns the events of the test's processes and counts their records
// that made none.
func drainRemote(t *testing.T, h *harness) (events []string, silent int) {
	t.Helper()
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
			continue
		}
		desc := h.m.Hook(g.HookID)
		if desc == nil {
			t.Fatalf("record of hook %d, which is not loaded", g.HookID)
		}
		resp, ok := h.build.Event(desc, g, func() (*api.Process, *api.Process) { return nil, nil })
		if !ok {
			silent++
			continue
		}
		_, hook, action, args := summarize(t, resp)
		events = append(events, strings.ReplaceAll(name+" "+hook+" "+strings.TrimPrefix(action.String(), "KPROBE_ACTION_")+" "+argsString(args), h.dir, "$DIR"))
	}
	return events, silent
}

// A manager without network actions refuses a policy that needs them,
// rather than loading it and never doing them.
func TestRemoteActionsNeedRunner(t *testing.T) {
	h := newHarness(t, compiler.MechSyscallTracepoint, testutil.Kernel(t).Map())
	_, err := h.tryLoad(t, remotePolicy, compiler.MechSyscallTracepoint, "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "action GetUrl is performed by the agent's network actions") {
		t.Fatalf("load error %v, want a refusal naming GetUrl", err)
	}
}
