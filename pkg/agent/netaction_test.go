package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/config"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// actionSinks are the loopback servers every test agent's GetUrl and
// DnsLookup go to (--policy-action-http-proxy, --policy-action-dns-server),
// so that no policy a test loads (Tetragon's open_geturl.yaml requests
// http://ebpf.io) reaches another address.
type actionSinks struct {
	// requests receives "GET <absolute URL>" as the proxy gets them
	requests chan string
	dns      *testutil.DNSServer
}

func loopbackActions(t *testing.T, cfg *config.Config) *actionSinks {
	t.Helper()
	s := &actionSinks{requests: make(chan string, 64), dns: testutil.StartDNSServer(t)}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.requests <- r.Method + " " + r.URL.String():
		default:
		}
	}))
	t.Cleanup(proxy.Close)
	cfg.ActionHTTPProxy, cfg.ActionDNSServer = proxy.URL, s.dns.Addr
	return s
}

// A policy added through the agent's API with GetUrl and DnsLookup: the
// agent requests the URL and looks the name up when a matching file is
// opened, with the event saying so, and does nothing on another file.
func TestAgentNetworkActions(t *testing.T) {
	testutil.RequireRoot(t)
	cfg := testConfig(t)
	sinks := loopbackActions(t, &cfg)
	a := startAgentWith(t, cfg)
	dir := workdir(t)
	for _, f := range []string{"canary", "dns", "other"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policy := fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: canaries
spec:
  kprobes:
  - call: fd_install
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: file
    selectors:
    - matchArgs:
      - index: 1
        operator: Equal
        values: [%q]
      matchActions:
      - action: GetUrl
        argUrl: http://canary.tetragon.test/opened
    - matchArgs:
      - index: 1
        operator: Equal
        values: [%q]
      matchActions:
      - action: DnsLookup
        argFqdn: dns.canary.tetragon.test
`, filepath.Join(dir, "canary"), filepath.Join(dir, "dns"))
	if _, err := a.policies.Add([]byte(policy)); err != nil {
		t.Fatal(err)
	}
	sub := kprobeEvents(a, dir)
	for _, f := range []string{"other", "canary", "dns"} {
		cmd := exec.Command("cat", filepath.Join(dir, f))
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cat %s: %v %s", f, err, out)
		}
	}
	for _, want := range []struct {
		file   string
		action api.KprobeAction
	}{{"canary", api.KprobeAction_KPROBE_ACTION_GETURL}, {"dns", api.KprobeAction_KPROBE_ACTION_DNSLOOKUP}} {
		k := nextKprobe(t, sub)
		if filePath(k.GetArgs()[1]) != filepath.Join(dir, want.file) || k.GetAction() != want.action || k.GetPolicyName() != "canaries" {
			t.Fatalf("event %v, want %s of %s", k, want.action, want.file)
		}
	}
	select {
	case r := <-sinks.requests:
		if r != "GET http://canary.tetragon.test/opened" {
			t.Errorf("proxy got %q, want GET http://canary.tetragon.test/opened", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GetUrl never reached the proxy")
	}
	select {
	case n := <-sinks.dns.Asked():
		if n != "dns.canary.tetragon.test" {
			t.Errorf("DNS server asked %q, want dns.canary.tetragon.test", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DnsLookup never reached the DNS server")
	}
	select {
	case r := <-sinks.requests:
		t.Errorf("unexpected second request %q", r)
	case <-time.After(200 * time.Millisecond):
	}
}
