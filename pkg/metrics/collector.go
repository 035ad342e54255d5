package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/policywatch"
)

// collector reads the agent's counters at scrape time.
type collector struct {
	src Sources

	events, policyEvents, missingProcess                      *prometheus.Desc
	ringbufReceived, ringbufLost, queueLost, notifyOverflowed *prometheus.Desc
	decodeErrors                                              *prometheus.Desc
	cacheSize, cacheCapacity, cacheEvictions                  *prometheus.Desc
	policyLoaded, policyLoads, policyLoadErrors               *prometheus.Desc
	hookCalls, hookMatched, hookLost, actions, rateLimited    *prometheus.Desc
	dockerLookups, dockerMisses, dockerConnected              *prometheus.Desc
	exported, exportedBytes, lastExported                     *prometheus.Desc
	exportRateLimited, exportQueueLost, exportErrors          *prometheus.Desc
	bpfStats, progRuns, progSeconds                           *prometheus.Desc
	netActions                                                *prometheus.Desc
}

func newCollector(src Sources) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	hook := []string{"policy", "hook"}
	prog := []string{"sensor", "policy", "attach", "program"}
	return &collector{
		src:              src,
		events:           d("tetragon_events_total", "The total number of Tetragon events", "type"),
		policyEvents:     d("tetragon_policy_events_total", "Policy events calls observed.", hook...),
		missingProcess:   d("tetragon_events_missing_process_info_total", "Number of events missing process info."),
		ringbufReceived:  d("tetragon_observer_ringbuf_events_received_total", "Number of records read from the base sensor's ring buffer."),
		ringbufLost:      d("tetragon_observer_ringbuf_events_lost_total", "Number of records the kernel could not write to the ring buffer (full): process exec, exit and fork. Policy hooks count theirs in tetragon_policy_hook_ringbuf_lost_total."),
		queueLost:        d("tetragon_observer_ringbuf_queue_events_lost_total", "Number of records dropped because the user-space decode queue was full."),
		notifyOverflowed: d("tetragon_notify_overflowed_events_total", "The total number of events dropped because a GetEvents client's buffer was full"),
		decodeErrors:     d("tetragon_decode_errors_total", "Number of records that could not be decoded."),
		cacheSize:        d("tetragon_process_cache_size", "The size of the process cache"),
		cacheCapacity:    d("tetragon_process_cache_capacity", "The capacity of the process cache. Expected to be constant."),
		cacheEvictions:   d("tetragon_process_cache_evictions_total", "Number of process cache LRU evictions."),
		policyLoaded:     d("tetragon_tracingpolicy_loaded", "The number of loaded tracing policy by state.", "state"),
		policyLoads:      d("tetragon_policy_loads_total", "Policy versions loaded: first loads and reloads, from files and the API."),
		policyLoadErrors: d("tetragon_policy_load_errors_total", "Policy load attempts that failed (the last good version, if any, stays)."),
		hookCalls:        d("tetragon_policy_hook_calls_total", "Calls a policy hook saw in the kernel. Reset when the policy reloads.", hook...),
		hookMatched:      d("tetragon_policy_hook_matched_total", "Calls a policy hook's selectors matched in the kernel. Reset when the policy reloads.", hook...),
		hookLost:         d("tetragon_policy_hook_ringbuf_lost_total", "Records a policy hook could not write to the ring buffer (full). Reset when the policy reloads.", hook...),
		actions:          d("tetragon_policy_actions_total", "Actions a policy hook took in the kernel (signal: Sigkill or Signal). Reset when the policy reloads.", "policy", "hook", "action"),
		rateLimited:      d("tetragon_policy_ratelimited_events_total", "Policy events a selector's rateLimit held back."),
		dockerLookups:    d("tetragon_docker_lookups_total", "Container metadata lookups through the Docker API."),
		dockerMisses:     d("tetragon_docker_lookup_misses_total", "Container metadata lookups that found nothing: events carry the container id only."),
		dockerConnected:  d("tetragon_docker_connected", "1 while the Docker API is connected and its events followed."),
		exported:         d("tetragon_events_exported_total", "Total number of events exported"),
		exportedBytes:    d("tetragon_events_exported_bytes_total", "Number of bytes exported for events"),
		lastExported:     d("tetragon_events_last_exported_timestamp", "Timestamp of the most recent event to be exported"),
		exportRateLimited: d("tetragon_export_ratelimit_events_dropped_total",
			"Number of events dropped on export due to rate limiting"),
		exportQueueLost: d("tetragon_export_queue_events_dropped_total", "Events the exporter lost because its queue was full (the disk was too slow)."),
		exportErrors:    d("tetragon_export_errors_total", "Events the exporter could not write."),
		bpfStats: d("tetragon_bpf_stats_enabled",
			"1 when kernel.bpf_stats_enabled is 1: tetragon_overhead_program_* are then reported; 0: per-program run counts and times are not available (sysctl -w kernel.bpf_stats_enabled=1)."),
		progRuns:    d("tetragon_overhead_program_runs_total", "The total number of times BPF program was executed.", prog...),
		progSeconds: d("tetragon_overhead_program_seconds_total", "The total time of BPF program running.", prog...),
		netActions: d("tetragon_policy_network_actions_total",
			"GetUrl and DnsLookup requests by outcome: done (a response came), failed (none), dropped (queue full), limited (over --policy-action-rate-limit).", "outcome"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.events, c.policyEvents, c.missingProcess,
		c.ringbufReceived, c.ringbufLost, c.queueLost, c.notifyOverflowed, c.decodeErrors,
		c.cacheSize, c.cacheCapacity, c.cacheEvictions,
		c.policyLoaded, c.policyLoads, c.policyLoadErrors,
		c.hookCalls, c.hookMatched, c.hookLost, c.actions, c.rateLimited,
		c.dockerLookups, c.dockerMisses, c.dockerConnected,
		c.exported, c.exportedBytes, c.lastExported, c.exportRateLimited, c.exportQueueLost, c.exportErrors,
		c.bpfStats, c.progRuns, c.progSeconds, c.netActions,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	st := c.src.Status()
	if c.src.Events != nil {
		for typ, n := range c.src.Events.byType() {
			counter(c.events, n, typ)
		}
		c.src.Events.byHook(func(policy, hook string, n uint64) { counter(c.policyEvents, n, policy, hook) })
	}
	counter(c.missingProcess, st.GetUnresolvedEvents())
	counter(c.ringbufReceived, st.GetRecordsTotal())
	l := st.GetLosses()
	counter(c.ringbufLost, l.GetKernelRingbuf())
	counter(c.queueLost, l.GetQueueOverflow())
	counter(c.notifyOverflowed, l.GetSubscriberDrops())
	counter(c.decodeErrors, l.GetDecodeErrors())
	gauge(c.cacheSize, float64(st.GetProcessCacheSize()))
	gauge(c.cacheCapacity, float64(c.src.ProcessCacheCapacity))
	counter(c.cacheEvictions, st.GetProcessCacheEvictions())

	states := map[policywatch.State]int{policywatch.Enabled: 0, policywatch.Disabled: 0, policywatch.LoadError: 0}
	for _, e := range c.src.Policies() {
		states[e.State]++
	}
	for s, n := range states {
		gauge(c.policyLoaded, float64(n), string(s))
	}
	loads, errs := c.src.Counters()
	counter(c.policyLoads, loads)
	counter(c.policyLoadErrors, errs)
	if c.src.RateLimited != nil {
		counter(c.rateLimited, c.src.RateLimited())
	}
	if c.src.NetActions != nil {
		na := c.src.NetActions()
		counter(c.netActions, na.Done, "done")
		counter(c.netActions, na.Failed, "failed")
		counter(c.netActions, na.Dropped, "dropped")
		counter(c.netActions, na.Limited, "limited")
	}

	hookStatus := c.src.Hooks()
	// a policy may hook one function twice: one series per policy and hook
	type sums struct{ calls, matched, lost, signals uint64 }
	perHook := map[hookKey]*sums{}
	for _, ps := range hookStatus {
		for _, h := range ps.Hooks {
			k := hookKey{ps.Name, HookLabel(h.Kind, h.Call)}
			s := perHook[k]
			if s == nil {
				s = &sums{}
				perHook[k] = s
			}
			s.calls += h.Stats.Calls
			s.matched += h.Stats.Matched
			s.lost += h.Stats.Drops
			s.signals += h.Stats.Signals
		}
	}
	for k, s := range perHook {
		counter(c.hookCalls, s.calls, k.policy, k.hook)
		counter(c.hookMatched, s.matched, k.policy, k.hook)
		counter(c.hookLost, s.lost, k.policy, k.hook)
		counter(c.actions, s.signals, k.policy, k.hook, "signal")
	}

	if c.src.Docker != nil {
		ds := c.src.Docker()
		counter(c.dockerLookups, ds.Lookups)
		counter(c.dockerMisses, ds.Misses)
		gauge(c.dockerConnected, boolGauge(ds.Connected))
	}
	if c.src.Export != nil {
		es := c.src.Export()
		counter(c.exported, es.Exported)
		counter(c.exportedBytes, es.Bytes)
		if !es.LastExported.IsZero() {
			gauge(c.lastExported, float64(es.LastExported.UnixNano())/1e9)
		}
		counter(c.exportRateLimited, es.RateLimited)
		counter(c.exportQueueLost, es.QueueDropped)
		counter(c.exportErrors, es.WriteErrors)
	}
	c.collectPrograms(ch, hookStatus)
}

// collectPrograms reports the BPF programs' run counters, when the kernel
// keeps them.
func (c *collector) collectPrograms(ch chan<- prometheus.Metric, hookStatus []hooks.PolicyStatus) {
	enabled := BPFStatsEnabled()
	ch <- prometheus.MustNewConstMetric(c.bpfStats, prometheus.GaugeValue, boolGauge(enabled))
	if !enabled {
		return
	}
	progs, err := readPrograms(c.src.PinRoot, hookStatus)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.progRuns, err)
		return
	}
	// the same labels twice (a hook's two programs of one name, two
	// versions mid-reload) add up
	type sums struct {
		runs    uint64
		seconds float64
	}
	agg := map[programLabels]*sums{}
	for _, p := range progs {
		s := agg[p.labels]
		if s == nil {
			s = &sums{}
			agg[p.labels] = s
		}
		s.runs += p.runs
		s.seconds += p.runtime.Seconds()
	}
	for l, s := range agg {
		ch <- prometheus.MustNewConstMetric(c.progRuns, prometheus.CounterValue, float64(s.runs), l.sensor, l.policy, l.attach, l.name)
		ch <- prometheus.MustNewConstMetric(c.progSeconds, prometheus.CounterValue, s.seconds, l.sensor, l.policy, l.attach, l.name)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
