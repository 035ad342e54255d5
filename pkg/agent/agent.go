// Package agent wires the agent together: sensors, ring buffer, process
// cache, event bus and the gRPC API, under one context.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/config"
	"github.com/tetragon-lite/tetragon/pkg/container"
	"github.com/tetragon-lite/tetragon/pkg/eventbus"
	"github.com/tetragon-lite/tetragon/pkg/exporter"
	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
	"github.com/tetragon-lite/tetragon/pkg/kube"
	"github.com/tetragon-lite/tetragon/pkg/metrics"
	"github.com/tetragon-lite/tetragon/pkg/netaction"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/policywatch"
	"github.com/tetragon-lite/tetragon/pkg/process"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/server"
)

// BTF locations tried in order when --btf is not given. The first is where
// the appliance mounts the host's BTF (as in Tetragon's docker instructions).
func btfCandidates() []string { return []string{"/var/lib/tetragon/btf", "/sys/kernel/btf/vmlinux"} }

// Agent is a running agent. Build it with Start; stop it by cancelling the
// context given to Start and calling Wait.
type Agent struct {
	cfg   config.Config
	log   zerolog.Logger
	node  string
	start time.Time

	// pinRoot is /sys/fs/bpf/<bpf-dir>; empty when pinning nothing
	pinRoot string
	// pinLock keeps other agents off pinRoot while this one runs
	pinLock *bpfDirLock
	base    *sensor.Base
	docker  *container.Watcher
	// kube is the Kubernetes mode; nil without Kubernetes
	kube  *kube.Agent
	hooks *hooks.Manager
	// hookEvents builds the events of the hooks' records
	hookEvents *hookevent.Builder
	// loaders builds the loader sensor's events (spec.loader)
	loaders *hookevent.Loaders
	// actions performs the policies' GetUrl and DnsLookup
	actions *netaction.Runner
	// policies are the known policies; watcher keeps the file ones current
	policies *policywatch.Registry
	watcher  *policywatch.Watcher
	reader   *observer.Reader
	cache    *process.Cache
	bus      *eventbus.Bus
	grpc     *grpc.Server
	ln       net.Listener

	// events counts the published events by type and policy, for metrics
	events metrics.EventCounter
	// metricsSrv and health are the HTTP endpoints; nil when off
	metricsSrv *httpServer
	health     *httpServer
	// exporter writes events to --export-filename; nil when off
	exporter *exporter.Exporter

	kernel kernelfeatures.Report
	// backlog carries the records a previous run's ring buffer kept
	backlog chan [][]byte
	// handover is set when this run adopted the previous run's base
	// sensor (loadBase)
	handover *handover
	// downtimeRecords/Lost: what was recorded while no agent read, and
	// lost: the drained buffer of the previous run's base sensor (less
	// what this run saw itself, notSeenAgain), or the adopted one's
	// records from before the adoption (handover)
	downtimeRecords, downtimeLost atomic.Uint64
	// baseSince is when each of this run's base sensor's programs was
	// attached
	baseSince sensor.BaseSince

	decodeErrors atomic.Uint64
	// started: Start finished; stopping: Wait began. Ready is started,
	// not stopping, and every policy file enforcing (notReady).
	started, stopping atomic.Bool
	group             *errgroup.Group
	cancelRun         context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// Start checks the environment, loads the sensors and starts serving. On
// error nothing is left loaded, pinned or listening (Close), and a previous
// run's pins enforce again.
func Start(ctx context.Context, cfg config.Config, log zerolog.Logger) (_ *Agent, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("tetragon must run as root (it loads BPF programs): run it with sudo, or as a privileged container")
	}
	// a is not the named result: the cleanup deferred below needs it after
	// an error return has set the result to nil
	a := &Agent{cfg: cfg, log: log, start: time.Now(), backlog: make(chan [][]byte, 1)}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.node = cfg.NodeName
	if a.node == "" {
		if a.node, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("reading host name (set --node-name): %w", err)
		}
	}
	kernelTypes, btfPath, err := loadBTF(cfg.BTF)
	if err != nil {
		return nil, err
	}
	log.Info().Str("btf", btfPath).Msg("Kernel BTF found")

	// Listen before loading anything: a second agent must fail here, with
	// nothing of its own loaded.
	a.ln, err = server.Listen(cfg.ServerAddress)
	if err != nil {
		return nil, err
	}
	if err := a.listenHTTP(); err != nil {
		return nil, err
	}
	a.bus = eventbus.New()
	if cfg.ExportFilename != "" {
		// before loading anything: a bad export file fails the start at once
		if err := a.startExporter(); err != nil {
			return nil, err
		}
	}
	for _, fs := range []kernelfs.FS{kernelfs.BPF(), kernelfs.Tracing()} {
		mounted, err := fs.Ensure()
		if err != nil {
			return nil, err
		}
		if mounted {
			log.Info().Str("path", fs.Path).Str("type", fs.Type).Msg("Mounted missing filesystem")
		}
	}
	a.kernel, err = kernelfeatures.Run(ctx)
	if err != nil {
		return nil, err
	}
	log.Info().Str("kernel", a.kernel.Kernel).Strs("available", a.kernel.Available()).
		Dur("took", a.kernel.Duration).Msg("Probed kernel features")
	if err := rlimit.RemoveMemlock(); err != nil {
		// kernels >= 5.11 charge BPF memory to the cgroup; the rlimit is moot there
		log.Debug().Err(err).Msg("Could not raise the memlock rlimit")
	}

	if cfg.BPFDir != "" {
		// before anything under the directory is touched: another live
		// agent's pins are not a previous run's
		if a.pinLock, err = lockBPFDir(filepath.Join(kernelfs.BPF().Path, cfg.BPFDir)); err != nil {
			return nil, err
		}
	}
	if err := a.rotatePins(); err != nil {
		return nil, err
	}
	if a.base, err = a.loadBase(kernelTypes); err != nil {
		return nil, err
	}
	a.baseSince = a.base.Since()
	if a.pinRoot != "" {
		if err := a.base.Pin(filepath.Join(a.pinRoot, "base")); err != nil {
			return nil, fmt.Errorf("pinning the base sensor: %w", err)
		}
	}
	if !a.base.Adopted() {
		// the processes already running get their exec records from
		// /proc, after the base sensor is attached so that none falls in
		// between (an adopted sensor has kept them since it was loaded)
		seeded, err := sensor.SeedExecCreds(a.base.ExecCreds(), cfg.ProcRoot)
		if err != nil {
			return nil, fmt.Errorf("recording the running processes' capabilities and namespaces: %w", err)
		}
		log.Debug().Int("processes", seeded).Msg("Recorded the running processes' capabilities and namespaces")
	}
	a.hooks = hooks.NewManager(log, a.base.Events(), sensor.Options{KernelTypes: kernelTypes, Features: a.kernel.Map(),
		ExecCreds: a.base.ExecCreds(), RunTag: a.base.RunTag()})
	a.actions, err = netaction.New(log, netaction.Config{DNSServer: cfg.ActionDNSServer, HTTPProxy: cfg.ActionHTTPProxy, PerMinute: cfg.ActionRate, Queue: cfg.ActionQueue})
	if err != nil {
		return nil, err
	}
	a.hooks.EnableRemoteActions()
	a.hookEvents = hookevent.NewBuilder(log, a.actions)
	a.loaders = hookevent.NewLoaders()
	if a.pinRoot != "" {
		a.hooks.PinUnder(filepath.Join(a.pinRoot, "policies"))
	}
	if a.base.Adopted() {
		// its ring buffer is the one the previous run's dispatcher and
		// attach points' objects write to: they can be adopted too
		a.hooks.AdoptFrom(filepath.Join(a.pinRoot+"_old", "policies"))
	}
	a.policies = policywatch.NewRegistry(log, a.hooks)
	var policyFiles []string
	if cfg.TracingPolicy != "" {
		policyFiles = append(policyFiles, cfg.TracingPolicy)
	}
	a.watcher = policywatch.NewWatcher(log, a.policies, cfg.PolicyDirs(), policyFiles)
	a.reader, err = observer.NewReader(a.base.Events(), cfg.EventQueueSize, log)
	if err != nil {
		return nil, err
	}

	var containers func(string) (*api.Container, *api.Pod)
	if cfg.DockerSocket != "" {
		a.docker = container.New(log, container.Options{SocketPath: cfg.DockerSocket})
		containers = a.containerInfo
	}
	if a.kube, err = kube.New(log, cfg.Kubeconfig, a.node, a.policies); err != nil {
		return nil, err
	}
	if a.kube != nil {
		containers = a.containerInfo
		// namespaced policies, podSelector and containerSelector apply
		// to the pods they name, kept up to date as containers come and go
		a.hooks.SetScopes(a.kube)
		a.kube.OnPodsChange(func() {
			if err := a.hooks.RefreshScopes(); err != nil {
				log.Error().Err(err).Msg("Updating the pods scoped policies apply to failed; their hooks keep the pods they had")
			}
		})
	}
	a.cache = process.NewCache(process.Options{
		Node:  a.node,
		Clock: process.NewClock(time.Now(), time.Duration(sensor.Ktime())),
		// kthreadd (pid 2) lives in the initial namespaces and, unlike pid 1,
		// is readable even when init is protected from ptrace
		HostNs:     process.ReadNamespaces(cfg.ProcRoot + "/2"),
		Max:        cfg.ProcessCacheSize,
		ProcRoot:   cfg.ProcRoot,
		Containers: containers,
	})
	svc := server.NewService(a.bus, a.Status, cfg.SubscriberQueue, log)
	svc.ServePolicies(a.policies)
	a.grpc = svc.Register()

	if a.metricsSrv != nil {
		// before the watcher runs: it reports reload latencies
		a.serveMetrics()
	}
	// runCtx ends what runs from here on when the start fails after it
	// (ctx is the caller's, and it goes on)
	runCtx, cancelRun := context.WithCancel(ctx)
	a.cancelRun = cancelRun
	g, gctx := errgroup.WithContext(runCtx)
	a.group = g
	// The reader runs from here on, so records of processes that start
	// while /proc is read queue up instead of being lost.
	g.Go(func() error { return a.reader.Run(gctx) })
	g.Go(func() error { return a.actions.Run(gctx) })
	if a.docker != nil {
		g.Go(func() error { return a.docker.Run(gctx) })
	}
	if a.kube != nil {
		// the node's pods are listed before /proc is read, so that the
		// running processes get their pods
		if err := a.kube.Start(gctx, g); err != nil {
			return nil, err
		}
	}
	n, err := a.cache.LoadProc(cfg.ProcRoot)
	if err != nil {
		log.Warn().Err(err).Msg("Reading running processes failed; they will appear without details")
	}
	log.Info().Int("processes", n).Msg("Read running processes from procfs")
	g.Go(func() error { return a.process(gctx) })
	g.Go(func() error { return a.watcher.Run(gctx) })
	g.Go(func() error {
		if err := a.grpc.Serve(a.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serving gRPC: %w", err)
		}
		return nil
	})
	if a.metricsSrv != nil {
		g.Go(a.metricsSrv.serve)
	}
	g.Go(func() error {
		<-gctx.Done()
		a.stopping.Store(true)
		a.stopServer()
		a.metricsSrv.stop()
		return nil
	})
	// Ready means enforcing: the startup policies attach first, and only
	// then does the previous run's pinned enforcement go.
	a.watcher.Sync()
	if cfg.TracingPolicy != "" {
		// named on the command line: the agent is run for it, and must
		// not run without it
		if err := a.checkNamedPolicy(cfg.TracingPolicy); err != nil {
			return nil, err
		}
	}
	if a.kube != nil {
		// Ready means enforcing what the cluster asks too
		if err := a.kube.WaitPolicies(gctx); err != nil {
			return nil, err
		}
	}
	if cfg.KeepSensors && cfg.APIPolicyDir != "" {
		if err := a.policies.PersistAPI(cfg.APIPolicyDir); err != nil {
			log.Warn().Err(err).Msg("The API policy directory is unusable: tracingpolicy add is refused until it can keep what it adds")
		}
	}
	a.dropOldPins()
	// Loading parsed the kernel's BTF: tens of MiB of heap that is garbage
	// now; hand it back instead of carrying it as idle RSS.
	debug.FreeOSMemory()
	a.started.Store(true)
	for _, p := range a.policies.Problems() {
		log.Error().Str("file", p.Source).Str("policy", p.Policy).Str("error", p.Err).
			Msg("Not ready: a policy file does not enforce (tetra status lists why); fix the file and it loads")
	}
	if a.metricsSrv != nil {
		log.Info().Str("address", a.metricsSrv.addr()).Msg("Serving metrics at /metrics")
		if !metrics.BPFStatsEnabled() {
			log.Info().Msg("Per-program BPF run counts and times are not available: kernel.bpf_stats_enabled is 0")
		}
	}
	if a.health != nil {
		log.Info().Str("address", a.health.addr()).Msg("Serving health at /healthz")
	}
	log.Info().Str("address", cfg.ServerAddress).Str("node", a.node).Msg("Listening for events...")
	return a, nil
}

// Wait blocks until the agent stopped (its context was cancelled or a
// component failed), then releases everything (Close).
func (a *Agent) Wait() error {
	err := a.group.Wait()
	return errors.Join(err, a.Close())
}

// Close stops what runs and releases what the agent holds, in the reverse
// order of Start; it is what Start runs on failure and Wait after the
// run, and it is idempotent. After a run with --keep-sensors-on-exit the
// pinned sensors and policies stay, enforcing; after a failed start
// nothing of this run stays pinned, and a previous run's pins go back in
// place, enforcing as they did before this start.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *Agent) close() error {
	var err error
	a.stopping.Store(true)
	if a.cancelRun != nil {
		// first: nothing runs on what is closed below
		a.cancelRun()
		a.group.Wait()
	}
	if a.bus != nil {
		a.bus.Close() // ends the exporter
	}
	if a.ln != nil {
		a.closeListener()
	}
	if a.docker != nil {
		a.docker.Close()
	}
	keep := a.started.Load() && a.cfg.KeepSensors && a.pinRoot != ""
	switch {
	case keep:
		// handles closed, pins left: the kernel keeps enforcing
		if serr := a.base.StopReading(); serr != nil {
			a.log.Warn().Err(serr).Msg("The next run cannot tell what the ring buffer loses until it starts")
		}
		err = errors.Join(err, a.hooks.Keep(), a.base.Close())
		a.log.Info().Str("pins", a.pinRoot).Msg("Sensors and policies stay loaded (--keep-sensors-on-exit)")
	default:
		if a.hooks != nil {
			if cerr := a.hooks.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("unloading policies: %w", cerr))
			}
		}
		// unpin before closing: the close then detaches, synchronously
		if a.pinRoot != "" {
			err = errors.Join(err, os.RemoveAll(a.pinRoot))
		}
		if a.base != nil {
			if cerr := a.base.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("unloading sensors: %w", cerr))
			}
		}
		if a.pinRoot != "" && !a.started.Load() {
			a.restoreOldPins()
		}
	}
	a.waitExporter()
	a.health.stop()
	a.metricsSrv.stop()
	// last: another agent may take the directory from here on
	err = errors.Join(err, a.pinLock.release())
	if a.started.Load() {
		a.log.Info().Msg("Listening for events completed.")
	}
	return err
}

// checkNamedPolicy fails the start when the policy file named with
// --tracing-policy holds no policy or does not load, with each error and
// its place.
func (a *Agent) checkNamedPolicy(path string) error {
	if !a.policies.Known(path) {
		return fmt.Errorf("--tracing-policy %s: the file holds no TracingPolicy (kind: TracingPolicy)", path)
	}
	probs := a.policies.Problems(path)
	if len(probs) == 0 {
		return nil
	}
	lines := make([]string, len(probs))
	for i, p := range probs {
		lines[i] = p.Detail()
	}
	return fmt.Errorf("--tracing-policy %s does not load:\n%s", path, strings.Join(lines, "\n"))
}

// notReady says why the agent is not ready; empty when it is. Ready means
// enforcing what it was given: started, not stopping, and every policy
// file's policies attached (a bad edit that keeps its last good version
// still enforces).
func (a *Agent) notReady() []string {
	switch {
	case a.stopping.Load():
		return []string{"stopping"}
	case !a.started.Load():
		return []string{"starting: attaching the startup policies"}
	}
	var out []string
	for _, p := range a.policies.Problems() {
		out = append(out, "not enforcing: "+p.String())
	}
	return out
}

// Bus is where the agent publishes events (for in-process consumers).
func (a *Agent) Bus() *eventbus.Bus { return a.bus }

// Cache is the process cache.
func (a *Agent) Cache() *process.Cache { return a.cache }

func (a *Agent) stopServer() {
	done := make(chan struct{})
	go func() {
		a.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		a.grpc.Stop()
	}
}

func (a *Agent) closeListener() {
	a.ln.Close()
	if path, ok := socketPath(a.cfg.ServerAddress); ok {
		os.Remove(path)
	}
}

func socketPath(address string) (string, bool) {
	if p, ok := strings.CutPrefix(address, "unix://"); ok {
		return p, true
	}
	return address, strings.HasPrefix(address, "/")
}

// process decodes records in ring-buffer order, keeps the process cache and
// publishes events. One goroutine, so records are handled in the order the
// kernel wrote them. The events of a batch of records are published
// together: a subscriber wakes once per batch, not once per event.
func (a *Agent) process(ctx context.Context) error {
	var dec observer.Decoder
	gc := time.NewTicker(500 * time.Millisecond)
	defer gc.Stop()
	handleAll := func(recs [][]byte) {
		// a new slice each time: subscribers keep the published one
		var out []*eventbus.Event
		for _, raw := range recs {
			out = a.handle(&dec, raw, out)
		}
		a.bus.PublishBatch(out)
	}
	// closed once the previous run's hooks are detached (handover)
	var detached <-chan struct{}
	if a.handover != nil {
		detached = a.handover.detached
	}
	// the backlog may be large: published in pieces, each a batch
	handleBacklog := func(recs [][]byte) {
		for len(recs) > 0 {
			n := min(len(recs), backlogBatch)
			handleAll(recs[:n])
			recs = recs[n:]
		}
	}
	for {
		select {
		case batch, ok := <-a.reader.Queue():
			if !ok {
				return nil
			}
			handleAll(batch)
			a.reader.Done(len(batch))
		case recs := <-a.backlog:
			handleBacklog(recs)
		case <-detached:
			detached = nil
			held := a.handover.release()
			a.handover.replaying = true
			handleBacklog(held)
			a.handover.replaying = false
			// beyond what could be held: lost like a full buffer's
			a.downtimeLost.Add(a.handover.overflow)
			a.log.Info().Uint64("events", a.downtimeRecords.Load()).Uint64("lost", a.downtimeLost.Load()).
				Int("seen_by_this_run", a.handover.again).Msg("Delivered the events recorded while the agent was down")
		case now := <-gc.C:
			a.cache.Collect(now)
		case <-ctx.Done():
			// the reader stops with the same context and then closes its
			// queue: what it read before is published, not dropped (the
			// bus and the export close after this returns)
			select {
			case recs := <-a.backlog:
				handleBacklog(recs)
			default:
			}
			for batch := range a.reader.Queue() {
				handleAll(batch)
				a.reader.Done(len(batch))
			}
			return nil
		}
	}
}

// backlogBatch is the most records of the downtime backlog published at once.
const backlogBatch = 256

// handle turns one raw record into events, appended to out.
func (a *Agent) handle(dec *observer.Decoder, raw []byte, out []*eventbus.Event) []*eventbus.Event {
	rec, err := dec.Decode(raw)
	if err != nil {
		if a.decodeErrors.Add(1) == 1 {
			a.log.Warn().Err(err).Msg("Dropping a record that cannot be decoded (see tetra status for the count)")
		}
		return out
	}
	if h := a.handover; h != nil && !h.replaying {
		if k, ok := recordKtime(rec); ok && k < h.since {
			a.downtimeRecords.Add(1)
		}
	}
	var ev *eventbus.Event
	switch r := rec.(type) {
	case *observer.Exec:
		ev = a.cache.Exec(r)
	case *observer.Exit:
		ev = a.cache.Exit(r)
		// the process is gone: its pid may come again
		a.loaders.Exited(r.Pid)
	case *observer.Fork:
		a.cache.Fork(r)
	case *observer.HookRecord:
		if h := a.handover; h != nil && r.Run != h.run {
			// the previous run's hooks, until dropOldPins detaches them
			if !h.released {
				h.hold(raw)
				return out
			}
			if a.seenByThisRun(r) {
				h.again++
				return out
			}
		}
		// nil: rate-limited, or its policy was unloaded while the record was queued
		ev = a.policyEvent(r)
	case *observer.Loader:
		// nil: a file this process already reported
		ev = a.loaderEvent(r)
	}
	if ev == nil {
		return out
	}
	a.events.Count(ev.GetEventsResponse)
	return append(out, ev)
}

// containerInfo resolves a container id through the pods of the node (in
// Kubernetes), else the Docker API; a miss waits at most for one bounded
// inspect.
func (a *Agent) containerInfo(id string) (*api.Container, *api.Pod) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if a.kube != nil {
		if c, pod := a.kube.Lookup(ctx, id); pod != nil {
			return c, pod
		}
	}
	if a.docker == nil {
		return &api.Container{Id: id}, nil
	}
	info, ok := a.docker.Lookup(ctx, id)
	if !ok {
		return &api.Container{Id: id}, nil
	}
	c := &api.Container{
		Id:             info.ID,
		Name:           info.Name,
		Image:          &api.Image{Id: info.ImageID, Name: info.Image},
		ComposeProject: info.ComposeProject,
		ComposeService: info.ComposeService,
	}
	if !info.Started.IsZero() {
		c.StartTime = timestamppb.New(info.Started)
	}
	return c, nil
}

// loadBase adopts the base sensor a previous run left pinned when this
// binary runs the same object (sensor.AdoptBase), and loads one
// otherwise.
func (a *Agent) loadBase(kernelTypes *btf.Spec) (*sensor.Base, error) {
	if a.pinRoot != "" {
		dir := filepath.Join(a.pinRoot+"_old", "base")
		if _, err := os.Stat(dir); err == nil {
			b, err := sensor.AdoptBase(dir)
			if err == nil {
				a.handover = newHandover(b)
				a.log.Info().Uint16("run", b.RunTag()).Msg("Adopted the previous run's base sensor: its ring buffer holds what happened while no agent ran")
				return b, nil
			}
			a.log.Info().Err(err).Msg("Loading a new base sensor; the previous run's is drained once the policies are loaded")
		}
	}
	return sensor.LoadBase(sensor.Options{KernelTypes: kernelTypes})
}

// rotatePins moves what a previous run left pinned (with
// --keep-sensors-on-exit, or after a crash) to <bpf-dir>_old: it keeps
// enforcing until this run's policies are attached (dropOldPins).
func (a *Agent) rotatePins() error {
	if a.cfg.BPFDir == "" {
		return nil
	}
	a.pinRoot = filepath.Join(kernelfs.BPF().Path, a.cfg.BPFDir)
	old := a.pinRoot + "_old"
	if _, err := os.Stat(a.pinRoot); err != nil {
		return nil
	}
	// an _old next to a live tree is from a start that died before it
	// finished; the live tree is newer
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("removing %s: %w", old, err)
	}
	if err := os.Rename(a.pinRoot, old); err != nil {
		return fmt.Errorf("moving the previous run's pins aside (%s): %w", a.pinRoot, err)
	}
	a.log.Info().Str("from", a.pinRoot).Str("to", old).Msg("Found pinned sensors of a previous run; they enforce until the policies are loaded")
	return nil
}

// restoreOldPins puts a previous run's pins back after a start that failed,
// so that they keep enforcing and the next start finds them as this one
// did. pinRoot holds nothing of this run by now.
func (a *Agent) restoreOldPins() {
	old := a.pinRoot + "_old"
	if _, err := os.Stat(old); err != nil {
		return
	}
	if err := os.Rename(old, a.pinRoot); err != nil {
		a.log.Warn().Err(err).Str("path", old).Msg("The previous run's pins stay at the _old path (they keep enforcing)")
		return
	}
	a.log.Info().Str("path", a.pinRoot).Msg("Start failed: the previous run's pinned sensors stay in place and keep enforcing")
}

// dropOldPins detaches the previous run's pinned sensors, then hands what
// their ring buffer recorded while no agent was reading to the event
// pipeline: unpinning first stops the writers, so nothing comes in between.
func (a *Agent) dropOldPins() {
	if a.pinRoot == "" {
		return
	}
	old := a.pinRoot + "_old"
	if _, err := os.Stat(old); err != nil {
		return
	}
	var prev *sensor.PinnedBase
	var perr error
	if a.handover == nil {
		// a base sensor of its own: the previous run's ring buffer is
		// drained once its writers are gone
		prev, perr = sensor.OpenPinnedBase(filepath.Join(old, "base"))
	}
	// the previous run's hooks the adopted objects still serve: those of
	// policies this run did not load again
	if err := a.hooks.ReleaseAdopted(); err != nil {
		a.log.Warn().Err(err).Msg("Handing over from the previous run's adopted policies")
	}
	// what this run adopted stays: it pinned it too
	if err := sensor.RemovePinned(old); err != nil {
		a.log.Warn().Err(err).Str("path", old).Msg("Removing the previous run's pins")
	} else {
		a.log.Info().Str("path", old).Msg("Removed the previous run's pinned sensors")
	}
	if a.handover != nil {
		lost, err := a.base.LostUnread()
		if err != nil {
			a.log.Warn().Err(err).Msg("Reading what the ring buffer lost while no agent read it")
		}
		a.downtimeLost.Store(lost)
		// the record loop delivers what it held (handover)
		close(a.handover.detached)
		return
	}
	if perr != nil {
		a.log.Warn().Err(perr).Msg("Events recorded while the agent was down are lost")
		return
	}
	defer prev.Close()
	recs, err := observer.Drain(prev.Events)
	if err != nil {
		a.log.Warn().Err(err).Msg("Events recorded while the agent was down are discarded")
		return
	}
	st, _ := prev.Stats()
	recs, again := a.notSeenAgain(recs)
	a.downtimeRecords.Store(uint64(len(recs)))
	a.downtimeLost.Store(st.RingbufDrops)
	a.backlog <- recs
	a.log.Info().Int("events", len(recs)).Uint64("lost", st.RingbufDrops).Int("seen_by_this_run", again).
		Msg("Delivering the events recorded while the agent was down")
}

// handoverSlack is how long after this run's sensor was attached a
// previous run's record of the same sensor still counts as possibly its
// own: a record's ktime is read when the program writes it, a little
// after the event, which this run's sensor may not have seen if it was
// attached in between.
const handoverSlack = time.Millisecond

// notSeenAgain drops the previous run's records of what this run's sensors
// saw themselves: from its base sensor's attachment (process events) or a
// hook's start (that hook's events, by its stable id) on, both runs
// recorded each event. Records it cannot place are kept: a duplicate is
// better than a loss. It returns the rest and how many it dropped.
func (a *Agent) notSeenAgain(recs [][]byte) ([][]byte, int) {
	var dec observer.Decoder
	kept := recs[:0]
	for _, raw := range recs {
		// an undecodable record is kept, and reported when handled
		rec, _ := dec.Decode(raw)
		if a.seenByThisRun(rec) {
			continue
		}
		kept = append(kept, raw)
	}
	return kept, len(recs) - len(kept)
}

// seenByThisRun says whether a previous run's record is of an event this
// run's own sensor recorded too: written from handoverSlack after that
// sensor began to record.
func (a *Agent) seenByThisRun(rec any) bool {
	ktime, since, ok := a.reportingSince(rec)
	return ok && ktime >= since+uint64(handoverSlack.Nanoseconds())
}

// reportingSince returns rec's ktime, and when this run's sensor that
// records the same events began to, if one does.
func (a *Agent) reportingSince(rec any) (ktime, since uint64, ok bool) {
	switch r := rec.(type) {
	case *observer.Exec:
		return r.Ktime, a.baseSince.Exec, true
	case *observer.Exit:
		return r.Ktime, a.baseSince.Exit, true
	case *observer.Fork:
		return r.Ktime, a.baseSince.Fork, true
	case *observer.HookRecord:
		since, ok := a.hooks.ReportingSince(r.HookID)
		return r.Ktime, since, ok
	}
	return 0, 0, false
}

// Hooks is the policy hook manager.
func (a *Agent) Hooks() *hooks.Manager { return a.hooks }

// policyEvent builds a policy hook's event with the calling process.
func (a *Agent) policyEvent(r *observer.HookRecord) *eventbus.Event {
	var wire process.Wire
	hook := a.hooks.Hook(r.HookID)
	if hook == nil {
		return nil // its policy was unloaded while the record was queued
	}
	ev, ok := a.hookEvents.Event(hook, r, func() (*api.Process, *api.Process) {
		var proc, parent *api.Process
		var ok bool
		proc, parent, wire, ok = a.cache.Lookup(r.Pid)
		if !ok {
			proc = &api.Process{Pid: wrapperspb.UInt32(r.Pid), Tid: wrapperspb.UInt32(r.Tid), Flags: "miss"}
		}
		return proc, parent
	})
	if !ok {
		return nil // rate-limited
	}
	ev.NodeName, ev.Time = a.node, a.cache.Timestamp(r.Ktime)
	return eventbus.NewEvent(ev, wire.Process, wire.Parent)
}

// Status reports the agent's state and counters.
func (a *Agent) Status() *api.AgentStatus {
	ks, err := a.base.Stats()
	if err != nil {
		a.log.Debug().Err(err).Msg("Reading kernel counters")
	}
	// the exporter is a bus subscriber too: its losses are its own
	// counters, not a GetEvents client's
	var es exporter.Stats
	if a.exporter != nil {
		es = a.exporter.Stats()
	}
	bs := a.bus.Stats()
	cs := a.cache.Stats()
	notReady := a.notReady()
	return &api.AgentStatus{
		Ready:        len(notReady) == 0,
		NotReady:     notReady,
		NodeName:     a.node,
		StartTime:    timestamppb.New(a.start),
		EventsTotal:  bs.Published,
		RecordsTotal: a.reader.Records(),
		Losses: &api.LossCounters{
			KernelRingbuf:   ks.RingbufDrops,
			QueueOverflow:   a.reader.Dropped(),
			SubscriberDrops: bs.Dropped - min(bs.Dropped, es.QueueDropped),
			DecodeErrors:    a.decodeErrors.Load(),

			ExportQueueOverflow: es.QueueDropped,
			ExportRateLimited:   es.RateLimited,
			ExportWriteErrors:   es.WriteErrors,
		},
		ProcessCacheSize:      uint64(cs.Size),
		ProcessCacheEvictions: cs.Evictions,
		UnresolvedEvents:      cs.Misses,
		Subscribers:           uint32(bs.Subscribers),
		KernelFeatures:        a.kernel.Map(),
		DowntimeRecords:       a.downtimeRecords.Load(),
		DowntimeLost:          a.downtimeLost.Load(),
		EventSubscribers:      subscriberStatus(bs.Each),
	}
}

// subscriberStatus reports each bus subscriber's counters.
func subscriberStatus(each []eventbus.SubscriberStats) []*api.SubscriberStatus {
	out := make([]*api.SubscriberStatus, len(each))
	for i, s := range each {
		out[i] = &api.SubscriberStatus{
			Name: s.Name, Since: timestamppb.New(s.Since), QueuedTotal: s.Queued, Dropped: s.Dropped,
			QueueLength: uint32(s.Length), QueueCapacity: uint32(s.Capacity),
		}
	}
	return out
}

// loadBTF finds the kernel's BTF. A nil spec means the running kernel's
// own, which the library reads itself.
func loadBTF(flag string) (*btf.Spec, string, error) {
	paths := btfCandidates()
	if flag != "" {
		paths = []string{flag}
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			if flag != "" {
				return nil, "", fmt.Errorf("kernel BTF %s: %w", p, err)
			}
			continue
		}
		if p == "/sys/kernel/btf/vmlinux" {
			return nil, p, nil
		}
		spec, err := btf.LoadSpec(p)
		if err != nil {
			return nil, "", fmt.Errorf("loading kernel BTF %s: %w", p, err)
		}
		return spec, p, nil
	}
	return nil, "", fmt.Errorf("no kernel BTF found (tried %s): the kernel needs CONFIG_DEBUG_INFO_BTF; in a container mount the host's /sys/kernel/btf/vmlinux at /var/lib/tetragon/btf, or pass --btf FILE",
		strings.Join(paths, ", "))
}
