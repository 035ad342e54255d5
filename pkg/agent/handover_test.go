package agent

import (
	"bytes"
	"testing"
)

// TestHandoverHoldsWithinBound: the previous run's records are held as
// copies, up to the ring buffer's size; beyond it they are counted as
// lost, and release hands over what was held and starts afresh.
func TestHandoverHoldsWithinBound(t *testing.T) {
	h := &handover{maxHeld: 100}
	raw := bytes.Repeat([]byte{1}, 40)
	for range 3 {
		h.hold(raw)
	}
	raw[0] = 2 // the reader reuses its buffer
	if len(h.held) != 2 || h.overflow != 1 || h.heldBytes != 80 {
		t.Fatalf("held %d records (%d bytes), %d over; want 2 (80 bytes) and 1 over a bound of 100", len(h.held), h.heldBytes, h.overflow)
	}
	if h.held[0][0] != 1 {
		t.Fatal("a held record changed with the reader's buffer: it was not copied")
	}
	if got := h.release(); len(got) != 2 || !h.released || h.held != nil || h.heldBytes != 0 {
		t.Fatalf("release returned %d records, left %d held (%d bytes), released %v; want 2, none, 0, true", len(got), len(h.held), h.heldBytes, h.released)
	}
}
