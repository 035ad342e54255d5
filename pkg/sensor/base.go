// Package sensor loads the agent's BPF programs and attaches them.
package sensor

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/bpf"
)

// Kernel-side counters, indexes of the stats map (enum stat_index in bpf/lib/common.h).
const (
	statRingbufDrops = 0
	statExec         = 1
	statExit         = 2
	statFork         = 3
)

// Stats are the base sensor's kernel-side counters, summed over CPUs.
type Stats struct {
	RingbufDrops uint64
	Execs        uint64
	Exits        uint64
	Forks        uint64
}

// Options configure loading.
type Options struct {
	// KernelTypes is the kernel's BTF; nil means the running kernel's.
	KernelTypes *btf.Spec
	// Features says which hook mechanisms and helpers the kernel offers,
	// by pkg/kernelfeatures feature name (kernelfeatures.Report.Map); nil means unknown, and
	// only what needs no probing (raw tracepoints) is used.
	Features map[string]bool
	// SockTrack is the map of tracked sockets the kprobe objects share
	// (NewSockTrack); nil: each hook object has its own.
	SockTrack *ebpf.Map
	// ExecCreds is the base sensor's map of exec records (Base.ExecCreds),
	// which matchCapabilityChanges and matchNamespaceChanges read; nil: a
	// hook with those entries is refused, as nothing would keep the
	// records it compares with.
	ExecCreds *ebpf.Map
}

// Base is the base sensor: process exec, fork and exit.
type Base struct {
	objs  bpf.ProcessObjects
	links []link.Link
	since BaseSince
}

// BaseSince is when each of the base sensor's programs began to run
// (Ktime, read as its attachment returned): from then on it records every
// event of its kind. The three are attached one after the other, which
// under emulation took over 100 ms.
type BaseSince struct{ Fork, Exec, Exit uint64 }

// LoadBase loads and attaches the base sensor. On error nothing is left
// loaded.
func LoadBase(opts Options) (*Base, error) {
	b := &Base{}
	collOpts := &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: opts.KernelTypes}}
	if err := bpf.LoadProcessObjects(&b.objs, collOpts); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading base sensor: %+v", ve)
		}
		return nil, fmt.Errorf("loading base sensor: %w", err)
	}
	progs := []struct {
		name  string
		prog  *ebpf.Program
		since *uint64
	}{
		// fork before exec, exit last: a consumer never sees a child's exec
		// before its fork record
		{"sched_process_fork", b.objs.HandleFork, &b.since.Fork},
		{"sched_process_exec", b.objs.HandleExec, &b.since.Exec},
		{"sched_process_exit", b.objs.HandleExit, &b.since.Exit},
	}
	for _, p := range progs {
		l, err := link.AttachTracing(link.TracingOptions{Program: p.prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("attaching tp_btf/%s: %w", p.name, err)
		}
		*p.since = Ktime()
		b.links = append(b.links, l)
	}
	return b, nil
}

// Since is when each program began to run.
func (b *Base) Since() BaseSince { return b.since }

// Ktime reads the clock of the records' ktime (bpf_ktime_get_boot_ns):
// CLOCK_BOOTTIME, in nanoseconds.
func Ktime() uint64 {
	var ts unix.Timespec
	// cannot fail: the clock id is valid and ts is writable
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return uint64(ts.Nano())
}

// Events is the ring buffer all records arrive on.
func (b *Base) Events() *ebpf.Map { return b.objs.Events }

// Stats reads the kernel-side counters.
func (b *Base) Stats() (Stats, error) { return readStats(b.objs.Stats) }

func readStats(m *ebpf.Map) (Stats, error) {
	var s Stats
	for idx, dst := range map[uint32]*uint64{
		statRingbufDrops: &s.RingbufDrops,
		statExec:         &s.Execs,
		statExit:         &s.Exits,
		statFork:         &s.Forks,
	} {
		var perCPU []uint64
		if err := m.Lookup(idx, &perCPU); err != nil {
			return Stats{}, fmt.Errorf("reading stats[%d]: %w", idx, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return s, nil
}

// Pin pins the base sensor's links and maps under dir, so it keeps
// running, and its ring buffer keeps filling, while the agent is down.
func (b *Base) Pin(dir string) error {
	return pinAll(dir, b.links, map[string]*ebpf.Map{"events": b.objs.Events, "stats": b.objs.Stats})
}

// Close detaches and unloads everything that is not pinned.
func (b *Base) Close() error {
	var errs []error
	for _, l := range b.links {
		errs = append(errs, l.Close())
	}
	b.links = nil
	errs = append(errs, b.objs.Close())
	return errors.Join(errs...)
}
