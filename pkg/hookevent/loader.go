package hookevent

import (
	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/escape"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

// LoaderSeen is how many (process, file) pairs Loaders remembers; Tetragon
// keeps as many.
const LoaderSeen = 1024

// Loaders turns the loader sensor's records into process_loader events,
// one per process and file, as Tetragon reports them: the kernel describes
// every mapping, a library is mapped several times (one mapping per
// segment, and again by mprotect when its code or relocations are
// protected), and the program itself is mapped inside exec, before its
// exec event, then again by its own startup code. The first mapping is
// reported, with the process as the cache knows it then (for the program,
// what the pid was before exec, as in Tetragon). Keyed by pid, as
// Tetragon's; unlike Tetragon's, a process's keys are forgotten at its
// exit (Exited), so a pid used again reports its files. It is not safe for
// concurrent use (the agent's record loop owns it).
type Loaders struct {
	// seen holds the last LoaderSeen keys; ring is their order, oldest
	// at next, so the oldest is forgotten first
	seen map[loaderKey]struct{}
	ring []loaderKey
	next int
	// life numbers each live pid's process, so that the keys of one that
	// exited match no later process of that pid
	life     map[uint32]uint64
	lastLife uint64
}

// loaderKey is a file mapped by a process.
type loaderKey struct {
	pid  uint32
	life uint64
	path string
}

// NewLoaders returns an empty Loaders.
func NewLoaders() *Loaders {
	return &Loaders{seen: make(map[loaderKey]struct{}, LoaderSeen), ring: make([]loaderKey, 0, LoaderSeen), life: map[uint32]uint64{}}
}

// Event builds the event of record r, whose process and parent the caller
// looked up (proc nil: unknown; it is then named by its pid, as other
// events name a process the cache misses). It returns nil for a file this
// process already reported.
func (l *Loaders) Event(r *observer.Loader, proc, parent *api.Process) *api.GetEventsResponse {
	life, ok := l.life[r.Pid]
	if !ok {
		l.lastLife++
		life = l.lastLife
		l.life[r.Pid] = life
	}
	if !l.remember(loaderKey{r.Pid, life, r.Path}) {
		return nil
	}
	return &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessLoader{ProcessLoader: &api.ProcessLoader{
		Process: proc,
		Parent:  parent,
		// the kernel's path bytes, escaped where they are not UTF-8 as
		// every path of an event is
		Path:    escape.String(r.Path),
		Buildid: r.BuildID,
	}}}
}

// Exited forgets process pid's files: it exited, and its pid may be used
// again.
func (l *Loaders) Exited(pid uint32) { delete(l.life, pid) }

// remember adds k and reports whether it is new.
func (l *Loaders) remember(k loaderKey) bool {
	if _, ok := l.seen[k]; ok {
		return false
	}
	if len(l.ring) < LoaderSeen {
		l.ring = append(l.ring, k)
	} else {
		delete(l.seen, l.ring[l.next])
		l.ring[l.next] = k
		l.next = (l.next + 1) % LoaderSeen
	}
	l.seen[k] = struct{}{}
	return true
}
