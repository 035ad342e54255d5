package hooks

import (
	"fmt"
	"sync"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// HookKindLoader is the kind a policy's loader sensor is listed under
// (Status): spec.loader is not a hook of the policy's lists, but it is
// something the policy keeps attached.
const HookKindLoader = "loader"

// loaderShare is the loader sensor every policy with loader: true shares,
// as in Tetragon (one sensor, whichever policies ask): attached when the
// first such policy loads, detached when the last one goes.
type loaderShare struct {
	mu    sync.Mutex
	obj   *sensor.Loader
	users int
}

// loaderUse is one policy version's hold on the shared loader sensor.
type loaderUse struct {
	share *loaderShare
	once  sync.Once
}

// checkLoader refuses, at its place in the file, a loader: true this
// manager cannot serve.
func (m *Manager) checkLoader(p *tp.TracingPolicy) error {
	if !p.Spec.Loader {
		return nil
	}
	src := p.Spec.LoaderSrc
	if m.scopesSet() && (p.Namespaced() || p.Spec.PodSelector != nil || p.Spec.ContainerSelector != nil) {
		// what a process maps is reported whatever its pod; Tetragon
		// refuses the combination too
		return fmt.Errorf("policy %q: %w", p.Metadata.Name,
			src.Errorf("loader events cannot be limited to a policy's pods (namespace, podSelector, containerSelector): the loader sensor sees every process, as in Tetragon, which refuses this too"))
	}
	if !m.opts.Features[kernelfeatures.Kprobe] {
		return fmt.Errorf("policy %q: %w", p.Metadata.Name,
			src.Errorf("loader needs a kprobe on %s (where the kernel hands a new mapping's path and build id to perf), and this kernel cannot attach kprobes (probe feature %s)", sensor.LoaderFunc, kernelfeatures.Kprobe))
	}
	return nil
}

// useLoader takes a hold on the loader sensor, attaching it if no policy
// holds it yet.
func (m *Manager) useLoader() (*loaderUse, error) {
	s := &m.loader
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obj == nil {
		obj, err := sensor.LoadLoader(m.events, m.opts)
		if err != nil {
			return nil, err
		}
		s.obj = obj
		m.log.Info().Str("kprobe", sensor.LoaderFunc).Msg("Loader sensor attached")
	}
	s.users++
	return &loaderUse{share: s}, nil
}

// release gives the hold back; the last one detaches the sensor. A second
// call does nothing.
func (u *loaderUse) release() error {
	var err error
	u.once.Do(func() {
		s := u.share
		s.mu.Lock()
		defer s.mu.Unlock()
		s.users--
		if s.users == 0 && s.obj != nil {
			err = s.obj.Close()
			s.obj = nil
		}
	})
	return err
}

// stats reads the shared sensor's counters.
func (u *loaderUse) stats() (sensor.GenericStats, error) {
	s := u.share
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obj == nil {
		return sensor.GenericStats{}, nil
	}
	return s.obj.Stats()
}

// LoaderAttached reports whether the loader sensor is attached.
func (m *Manager) LoaderAttached() bool {
	m.loader.mu.Lock()
	defer m.loader.mu.Unlock()
	return m.loader.obj != nil
}
