package hookevent

import (
	"strconv"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/escape"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

// LoaderSeen is how many (process, file) pairs Loaders remembers; Tetragon
// keeps as many.
const LoaderSeen = 1024

// Loaders turns the loader sensor's records into process_loader events,
// one per process execution and file: the kernel describes every mapping,
// and a library is mapped several times (one mapping per segment), which
// Tetragon reports once. It is not safe for concurrent use (the agent's
// record loop owns it).
type Loaders struct {
	// seen holds the last LoaderSeen keys; ring is their order, oldest
	// at next, so the oldest is forgotten first
	seen map[loaderKey]struct{}
	ring []loaderKey
	next int
}

// loaderKey is a file mapped by a process execution: the execution's id,
// not its pid, so that a process that executes again, or a reused pid,
// reports its files anew.
type loaderKey struct{ exec, path string }

// NewLoaders returns an empty Loaders.
func NewLoaders() *Loaders {
	return &Loaders{seen: make(map[loaderKey]struct{}, LoaderSeen), ring: make([]loaderKey, 0, LoaderSeen)}
}

// Event builds the event of record r, whose process and parent the caller
// looked up (proc nil: unknown; it is then named by its pid, as other
// events name a process the cache misses). It returns nil for a file this
// process execution already reported.
func (l *Loaders) Event(r *observer.Loader, proc, parent *api.Process) *api.GetEventsResponse {
	exec := proc.GetExecId()
	if exec == "" {
		exec = "pid:" + strconv.FormatUint(uint64(r.Pid), 10)
	}
	if !l.remember(loaderKey{exec, r.Path}) {
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
