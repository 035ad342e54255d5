// Package metrics exposes the agent's counters to Prometheus
// (--metrics-server), under Tetragon's metric names where a metric means
// the same.
//
// Nearly everything is read at scrape time from the counters the agent
// keeps anyway (its status, the hooks' kernel-side counters, the policy
// registry, the exporter), so there is no second set of books to drift from
// `tetra status`. What nothing else counts, events by type and policy and
// the reload latency, is counted here.
//
// Each agent has its own registry: nothing is registered globally.
package metrics

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/container"
	"github.com/tetragon-lite/tetragon/pkg/exporter"
	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/netaction"
	"github.com/tetragon-lite/tetragon/pkg/policywatch"
	"github.com/tetragon-lite/tetragon/pkg/version"
)

// Sources are where the metrics come from. Status, Hooks and Policies are
// required; the rest may be nil when that part of the agent is off.
type Sources struct {
	// Status is the agent's status, as `tetra status` shows it.
	Status func() *api.AgentStatus
	// Hooks are the loaded policies' hooks with their kernel counters.
	Hooks func() []hooks.PolicyStatus
	// Policies are the known policies, for their states, and Counters
	// their loads and load errors.
	Policies func() []policywatch.Entry
	Counters func() (loads, errors uint64)
	// RateLimited counts policy events held back by a selector's rateLimit.
	RateLimited func() uint64
	// NetActions counts GetUrl and DnsLookup requests by outcome.
	NetActions func() netaction.Stats
	// Docker is the container-metadata watcher's counters; nil without Docker.
	Docker func() container.Stats
	// Export is the file exporter's counters; nil without --export-filename.
	Export func() exporter.Stats
	// Events counts the published events.
	Events *EventCounter
	// ProcessCacheCapacity is --process-cache-size.
	ProcessCacheCapacity int
	// PinRoot is the agent's bpffs directory, whose pins tell which policy
	// hook a BPF program serves; empty when not pinning.
	PinRoot string
}

// Metrics is one agent's registry.
type Metrics struct {
	reg    *prometheus.Registry
	reload prometheus.Histogram
}

// New builds the registry over src.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		reload: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tetragon_policy_reload_latency_seconds",
			Help: "Time from a change in a policy directory being noticed to the new policy versions attached (debounce included).",
			// a reload verifies every hook again: about a second per hook
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64},
		}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tetragon_build_info",
		Help:        "Build information about tetragon",
		ConstLabels: prometheus.Labels{"version": version.Version, "go_version": runtime.Version()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.reload,
		newCollector(src),
	)
	return m
}

// ObserveReload records one policy reload's latency; it fits
// policywatch.Watcher.Reloaded.
func (m *Metrics) ObserveReload(d time.Duration) { m.reload.Observe(d.Seconds()) }

// Handler serves the registry in the Prometheus formats at GET /metrics.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// a failing collector must not hide the others
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}
