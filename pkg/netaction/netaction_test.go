package netaction

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// start runs r until the test ends.
func start(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitStats waits until r's counters are want.
func waitStats(t *testing.T, r *Runner, want Stats) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats() != want {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", r.Stats(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGetURL(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got <- req.Method + " " + req.URL.RequestURI()
	}))
	defer srv.Close()
	r, err := New(zerolog.Nop(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	r.GetURL("p", srv.URL+"/canary?x=1")
	select {
	case s := <-got:
		if s != "GET /canary?x=1" {
			t.Errorf("server got %q, want GET /canary?x=1", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the GET never reached the server")
	}
	waitStats(t, r, Stats{Done: 1})
}

func TestLookupDNS(t *testing.T) {
	dns := testutil.StartDNSServer(t)
	r, err := New(zerolog.Nop(), Config{DNSServer: dns.Addr})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	r.LookupDNS("p", "canary.tetragon.test")
	select {
	case name := <-dns.Asked():
		if name != "canary.tetragon.test" {
			t.Errorf("DNS server asked %q, want canary.tetragon.test", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lookup never reached the DNS server")
	}
	waitStats(t, r, Stats{Done: 1})
}

// A server that does not answer costs a worker Timeout, and the request
// counts as failed.
func TestTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-block:
		case <-req.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	r, err := New(zerolog.Nop(), Config{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	t0 := time.Now()
	r.GetURL("p", srv.URL)
	waitStats(t, r, Stats{Failed: 1})
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("the request failed after %v, want about the 200ms timeout", d)
	}
}

// Submitting never blocks: past the queue requests are dropped, past the
// rate they are limited, and both are counted.
func TestDropsAndLimit(t *testing.T) {
	r, err := New(zerolog.Nop(), Config{Queue: 2, PerMinute: 60 * 1000})
	if err != nil {
		t.Fatal(err)
	}
	// no Run: nothing leaves the queue
	done := make(chan struct{})
	go func() {
		for range 5 {
			r.GetURL("p", "http://127.0.0.1:1/")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("submitting blocked")
	}
	if s := r.Stats(); s != (Stats{Dropped: 3}) {
		t.Errorf("stats %+v, want 3 dropped", s)
	}

	r, err = New(zerolog.Nop(), Config{Queue: 100, PerMinute: 60})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		r.LookupDNS("p", "canary.test")
	}
	// a burst of one per second's worth: one passes, four are limited
	if s := r.Stats(); s != (Stats{Limited: 4}) || len(r.queue) != 1 {
		t.Errorf("stats %+v with %d queued, want 4 limited and 1 queued", s, len(r.queue))
	}
}

// With HTTPProxy, GetUrl of any host goes to the proxy (here a loopback
// server), never to the host itself.
func TestHTTPProxy(t *testing.T) {
	got := make(chan string, 4)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got <- req.Method + " " + req.URL.String()
	}))
	defer proxy.Close()
	r, err := New(zerolog.Nop(), Config{HTTPProxy: proxy.URL})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	r.GetURL("p", "http://canary.invalid/x")
	select {
	case s := <-got:
		if s != "GET http://canary.invalid/x" {
			t.Errorf("proxy got %q, want GET http://canary.invalid/x", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the GET never reached the proxy")
	}
	waitStats(t, r, Stats{Done: 1})
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{{DNSServer: "127.0.0.1"}, {DNSServer: ":53"}, {Queue: -1}, {HTTPProxy: "127.0.0.1:3128"}, {HTTPProxy: "socks5://127.0.0.1:1080"}} {
		if _, err := New(zerolog.Nop(), c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
