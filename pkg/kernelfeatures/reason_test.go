package kernelfeatures

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// A load refused with EPERM reads as the kernel refusing the program type,
// not as cilium/ebpf's memlock hint; other errors are kept, on one line.
func TestReason(t *testing.T) {
	eperm := fmt.Errorf("loading Tracing/TraceFEntry program: load program: %w%s", unix.EPERM, memlockHint)
	if got, want := reason(eperm), "loading Tracing/TraceFEntry program: load program: operation not permitted (the kernel refuses this program type even to root; not a memlock limit)"; got != want {
		t.Errorf("EPERM: %q, want %q", got, want)
	}
	other := errors.New("load program: invalid argument:\n\tunknown func bpf_override_return#58")
	if got, want := reason(other), "load program: invalid argument: unknown func bpf_override_return#58"; got != want {
		t.Errorf("other: %q, want %q", got, want)
	}
}
