// Package netaction performs the network actions of policies, GetUrl (an
// HTTP GET) and DnsLookup (a DNS query), when a matching event arrives:
// Tetragon's way of triggering canary tokens.
//
// A request never blocks the caller, which is the event pipeline: it is
// queued (bounded) and done by a worker, or dropped and counted when the
// queue is full or the rate limit is exceeded. Each request has a timeout,
// so a dead server only holds a worker that long.
package netaction

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Config tunes the actions.
type Config struct {
	// DNSServer is the host:port of the DNS server DnsLookup asks; empty:
	// the system's resolver (/etc/resolv.conf).
	DNSServer string
	// HTTPProxy is the URL of the proxy GetUrl goes through; empty: the
	// environment's (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
	HTTPProxy string
	// PerMinute is the most requests started per minute, all policies
	// together; the rest are dropped and counted. Bursts of up to a
	// second's worth (at least one) pass at once.
	PerMinute int
	// Queue is how many requests may wait for a worker.
	Queue int
	// Workers perform requests concurrently.
	Workers int
	// Timeout bounds one request, connection included.
	Timeout time.Duration
}

// Defaults for the fields of Config left zero.
const (
	DefaultPerMinute = 600
	DefaultQueue     = 256
	DefaultWorkers   = 2
	DefaultTimeout   = 5 * time.Second
)

// maxBody is how much of a response is read (and discarded) so that the
// connection can be reused; the rest is cut off.
const maxBody = 64 << 10

// Kind is the action a request performs.
type Kind int

// The actions.
const (
	GetURL Kind = iota
	LookupDNS
)

func (k Kind) String() string {
	if k == LookupDNS {
		return "DnsLookup"
	}
	return "GetUrl"
}

// Stats counts requests by outcome.
type Stats struct {
	// Done: a response came (any HTTP status; any DNS answer, NXDOMAIN
	// included: the query reached the server). Failed: no response
	// (timeout, refused connection, ...).
	Done, Failed uint64
	// Dropped: the queue was full. Limited: over PerMinute.
	Dropped, Limited uint64
}

type request struct {
	kind           Kind
	policy, target string
}

// Runner queues and performs the requests. It is safe for concurrent use.
type Runner struct {
	log      zerolog.Logger
	cfg      Config
	queue    chan request
	limiter  *rate.Limiter
	client   *http.Client
	resolver *net.Resolver

	done, failed, dropped, limited atomic.Uint64
}

// New checks cfg and returns a runner; Run performs its requests.
func New(log zerolog.Logger, cfg Config) (*Runner, error) {
	if cfg.PerMinute == 0 {
		cfg.PerMinute = DefaultPerMinute
	}
	if cfg.Queue == 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PerMinute < 0 || cfg.Queue < 0 || cfg.Workers < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("network actions: negative setting in %+v", cfg)
	}
	r := &Runner{
		log:     log,
		cfg:     cfg,
		queue:   make(chan request, cfg.Queue),
		limiter: rate.NewLimiter(rate.Limit(float64(cfg.PerMinute)/60), max(1, cfg.PerMinute/60)),
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.HTTPProxy != "" {
		u, err := url.Parse(cfg.HTTPProxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("HTTP proxy %q for GetUrl: want http://host:port or https://host:port", cfg.HTTPProxy)
		}
		transport.Proxy = http.ProxyURL(u)
	}
	transport.MaxIdleConnsPerHost = cfg.Workers
	r.client = &http.Client{Transport: transport, Timeout: cfg.Timeout}
	r.resolver = net.DefaultResolver
	if cfg.DNSServer != "" {
		host, port, err := net.SplitHostPort(cfg.DNSServer)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("DNS server %q for DnsLookup: want host:port, e.g. 127.0.0.1:53", cfg.DNSServer)
		}
		server := cfg.DNSServer
		// the Go resolver, so that every query goes to this server
		// (the C library's would read /etc/resolv.conf)
		r.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	return r, nil
}

// GetURL queues an HTTP GET of url for policy.
func (r *Runner) GetURL(policy, url string) { r.submit(request{GetURL, policy, url}) }

// LookupDNS queues a DNS lookup of fqdn for policy.
func (r *Runner) LookupDNS(policy, fqdn string) { r.submit(request{LookupDNS, policy, fqdn}) }

func (r *Runner) submit(req request) {
	if !r.limiter.Allow() {
		r.limited.Add(1)
		return
	}
	select {
	case r.queue <- req:
	default:
		r.dropped.Add(1)
	}
}

// Stats returns the counters.
func (r *Runner) Stats() Stats {
	return Stats{Done: r.done.Load(), Failed: r.failed.Load(), Dropped: r.dropped.Load(), Limited: r.limited.Load()}
}

// Run performs queued requests until ctx ends; requests still queued then
// are dropped.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case req := <-r.queue:
					r.perform(ctx, req)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (r *Runner) perform(ctx context.Context, req request) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var err error
	switch req.kind {
	case GetURL:
		err = r.get(ctx, req.target)
	case LookupDNS:
		err = r.lookup(ctx, req.target)
	}
	ev := r.log.Debug()
	if err != nil {
		r.failed.Add(1)
		ev = r.log.Warn().Err(err)
	} else {
		r.done.Add(1)
	}
	ev.Str("policy", req.policy).Str("action", req.kind.String()).Str("target", req.target).Msg("Policy network action")
}

func (r *Runner) get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GetUrl %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "tetragon")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("GetUrl: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	return nil
}

func (r *Runner) lookup(ctx context.Context, fqdn string) error {
	_, err := r.resolver.LookupHost(ctx, fqdn)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil // the server answered: the lookup reached it
	}
	if err != nil {
		return fmt.Errorf("DnsLookup %s: %w", fqdn, err)
	}
	return nil
}
