package agent

import (
	"time"

	"github.com/tetragon-lite/tetragon/pkg/container"
	"github.com/tetragon-lite/tetragon/pkg/exporter"
	"github.com/tetragon-lite/tetragon/pkg/metrics"
)

// exportDrainTimeout bounds how long stopping waits for the export queue
// to reach the disk: a stalled disk must not keep the agent from exiting.
const exportDrainTimeout = 5 * time.Second

// listenHTTP opens the health and metrics ports. Health serves at once, so
// that probes see 503 while the agent starts; metrics serve once there is
// something to report (serveMetrics).
func (a *Agent) listenHTTP() error {
	if addr := a.cfg.HealthServer; addr != "" {
		srv, err := listenHTTP("health", addr, healthHandler(a.notReady))
		if err != nil {
			return err
		}
		a.health = srv
		go func() {
			if err := srv.serve(); err != nil {
				a.log.Error().Err(err).Msg("Health endpoint stopped")
			}
		}()
	}
	if addr := a.cfg.MetricsServer; addr != "" {
		// the handler is set by serveMetrics, before serving starts
		srv, err := listenHTTP("metrics", addr, nil)
		if err != nil {
			a.health.stop()
			a.health = nil
			return err
		}
		a.metricsSrv = srv
	}
	return nil
}

// serveMetrics builds the agent's registry over the parts that now exist.
func (a *Agent) serveMetrics() {
	src := metrics.Sources{
		Status:               a.Status,
		Hooks:                a.hooks.Status,
		Policies:             a.policies.List,
		Counters:             a.policies.Counters,
		RateLimited:          a.hookEvents.RateLimited,
		NetActions:           a.actions.Stats,
		Events:               &a.events,
		ProcessCacheCapacity: a.cfg.ProcessCacheSize,
		PinRoot:              a.pinRoot,
	}
	if a.docker != nil {
		src.Docker = func() container.Stats { return a.docker.Stats() }
	}
	if a.exporter != nil {
		src.Export = a.exporter.Stats
	}
	m := metrics.New(src)
	a.watcher.Reloaded = m.ObserveReload
	a.metricsSrv.srv.Handler = m.Handler()
}

// startExporter subscribes the export file to the bus and starts writing.
func (a *Agent) startExporter() error {
	allow, deny, err := a.cfg.ExportFilters()
	if err != nil {
		return err
	}
	e, err := exporter.New(a.bus, exporter.Options{
		Filename:   a.cfg.ExportFilename,
		MaxSizeMB:  a.cfg.ExportMaxSize,
		MaxBackups: a.cfg.ExportBackups,
		Compress:   a.cfg.ExportCompress,
		Allow:      allow,
		Deny:       deny,
		RateLimit:  a.cfg.ExportRate,
		QueueSize:  a.cfg.ExportQueue,
		NodeName:   a.node,
	}, a.log)
	if err != nil {
		return err
	}
	a.exporter = e
	go e.Run()
	a.log.Info().Str("file", a.cfg.ExportFilename).Msg("Exporting events")
	return nil
}

// waitExporter lets the exporter write what it has queued; the bus is
// closed, so it ends once it has.
func (a *Agent) waitExporter() {
	if a.exporter == nil {
		return
	}
	select {
	case <-a.exporter.Done():
	case <-time.After(exportDrainTimeout):
		// the write that holds it up may still return; nothing more is
		// written or opened at the path after the agent has stopped
		a.exporter.Abandon()
		a.log.Warn().Str("file", a.cfg.ExportFilename).Dur("waited", exportDrainTimeout).
			Msg("The export file is not writable in time; the events still queued for it are lost")
	}
}

// MetricsAddress is where the metrics endpoint listens ("" when off): the
// port chosen when --metrics-server asked for port 0.
func (a *Agent) MetricsAddress() string { return a.metricsSrv.addr() }

// HealthAddress is where the health endpoint listens ("" when off).
func (a *Agent) HealthAddress() string { return a.health.addr() }
