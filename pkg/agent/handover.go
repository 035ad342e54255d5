package agent

import (
	"bytes"

	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
)

// handover is what the record loop keeps while this run takes over from
// a previous run whose base sensor it adopted (loadBase). That run's
// hooks stay attached until this run's policies enforce (dropOldPins),
// and write to the same ring buffer: their records are held until then,
// as their policies may not be loaded yet, and then delivered but for
// what this run's own hooks reported too. Only the record loop touches it
// once Start has set it, but for detached, which dropOldPins closes.
type handover struct {
	run uint16 // this run's tag (sensor.Base.RunTag)
	// since is when this run adopted the sensor (Ktime): older records
	// were written while no agent read them
	since    uint64
	detached chan struct{}

	released  bool     // detached was seen: held is being or was delivered
	replaying bool     // held records are going through handle
	held      [][]byte // the previous run's hook records until detached
	// heldBytes is held's size, at most maxHeld (the ring buffer's: what
	// a drain of the previous run's own buffer could hold); overflow
	// counts the records dropped beyond it
	heldBytes, maxHeld int
	overflow           uint64
	again              int // those dropped as this run's hooks reported them too
}

func newHandover(b *sensor.Base) *handover {
	return &handover{run: b.RunTag(), since: sensor.Ktime(), detached: make(chan struct{}),
		maxHeld: int(b.Events().MaxEntries())}
}

// hold keeps a copy of a record of the previous run's hooks until they
// are detached, within maxHeld (the reader reuses raw's memory).
func (h *handover) hold(raw []byte) {
	if h.heldBytes+len(raw) > h.maxHeld {
		h.overflow++
		return
	}
	h.heldBytes += len(raw)
	h.held = append(h.held, bytes.Clone(raw))
}

// release returns the held records: from here on the previous run's
// records are filtered as they come.
func (h *handover) release() [][]byte {
	h.released = true
	held := h.held
	h.held, h.heldBytes = nil, 0
	return held
}

// recordKtime is when a decoded record was written.
func recordKtime(rec any) (uint64, bool) {
	switch r := rec.(type) {
	case *observer.Exec:
		return r.Ktime, true
	case *observer.Exit:
		return r.Ktime, true
	case *observer.Fork:
		return r.Ktime, true
	case *observer.HookRecord:
		return r.Ktime, true
	case *observer.Loader:
		return r.Ktime, true
	}
	return 0, false
}
