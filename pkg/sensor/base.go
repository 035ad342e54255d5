// Package sensor loads the agent's BPF programs and attaches them.
package sensor

import (
	"errors"
	"fmt"
	"path/filepath"

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
	// RunTag is this agent run's tag (Base.RunTag), which every record of
	// the objects loaded and the hooks added with these options carries:
	// a restart that adopts the previous run's base sensor reads both
	// runs' records from one ring buffer.
	RunTag uint16
}

// tagRun sets an object's run_tag (bpf/lib/common.h).
func tagRun(spec *ebpf.CollectionSpec, tag uint16) error {
	v, ok := spec.Variables[bpf.ProcessVarRunTag]
	if !ok {
		return errors.New("the object has no run_tag")
	}
	if err := v.Set(tag); err != nil {
		return fmt.Errorf("setting the object's run tag: %w", err)
	}
	return nil
}

// Base is the base sensor: process exec, fork and exit.
type Base struct {
	objs  bpf.ProcessObjects
	links []link.Link
	since BaseSince
	// runs holds the tag of the last run that loaded or adopted the
	// sensor and the ring buffer's drops when the last run stopped
	// reading (an array: runsTag, runsDrops), pinned under runsPin; tag
	// is this run's
	runs *ebpf.Map
	tag  uint16
	// adopted: the sensor is a previous run's (AdoptBase)
	adopted bool
	// baseline is what its counters held when this run adopted it: Stats
	// counts from there, as for a sensor of its own
	baseline Stats
}

// runsPin is the name the base sensor's run counter is pinned under: it
// names the object too, so that only an agent with the same object finds
// it (AdoptBase).
func runsPin() string { return "runs-" + bpf.ProcessDigest() }

// The entries of the runs map.
const (
	runsTag   = uint32(0)
	runsDrops = uint32(1)
	runsMax   = 2
)

// ErrNotAdopted wraps why a pinned base sensor is not adopted (AdoptBase).
var ErrNotAdopted = errors.New("the pinned base sensor cannot be adopted")

// BaseSince is when each of the base sensor's programs began to run
// (Ktime, read as its attachment returned): from then on it records every
// event of its kind. The three are attached one after the other, which
// under emulation took over 100 ms.
type BaseSince struct{ Fork, Exec, Exit uint64 }

// LoadBase loads and attaches the base sensor. On error nothing is left
// loaded.
func LoadBase(opts Options) (*Base, error) {
	b := &Base{tag: 1}
	var err error
	b.runs, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: runsMax})
	if err != nil {
		return nil, fmt.Errorf("creating the base sensor's run counter: %w", err)
	}
	if err := b.runs.Put(runsTag, uint64(b.tag)); err != nil {
		b.Close()
		return nil, fmt.Errorf("writing the base sensor's run counter: %w", err)
	}
	spec, err := bpf.LoadProcess()
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("reading the base sensor's object: %w", err)
	}
	if err := tagRun(spec, b.tag); err != nil {
		b.Close()
		return nil, fmt.Errorf("base sensor: %w", err)
	}
	collOpts := &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: opts.KernelTypes}}
	if err := spec.LoadAndAssign(&b.objs, collOpts); err != nil {
		b.Close()
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

// AdoptBase takes over the base sensor a previous run pinned in dir
// (Pin) when it runs this binary's object: its programs stay attached, so
// no process event falls between the runs or is seen by both, and its
// ring buffer holds, in order, what they recorded while no agent read it.
// The pins stay as they are, so that a start that fails leaves the sensor
// as it found it; Pin adds this run's. This run's tag is the last run's
// plus one. The error wraps ErrNotAdopted when there is no sensor of this
// object in dir.
func AdoptBase(dir string) (*Base, error) {
	runs, err := openPinnedMap(filepath.Join(dir, runsPin()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAdopted, err)
	}
	b := &Base{runs: runs, adopted: true}
	var last uint64
	if err := runs.Lookup(runsTag, &last); err != nil {
		b.Close()
		return nil, fmt.Errorf("reading the pinned base sensor's run counter: %w", err)
	}
	// 0 is no run's (an object loaded without a tag)
	if b.tag = uint16(last) + 1; b.tag == 0 {
		b.tag = 1
	}
	if err := runs.Put(runsTag, uint64(b.tag)); err != nil {
		b.Close()
		return nil, fmt.Errorf("writing the pinned base sensor's run counter: %w", err)
	}
	for _, m := range []struct {
		name string
		dst  **ebpf.Map
	}{{"events", &b.objs.Events}, {"stats", &b.objs.Stats}, {"exec_creds", &b.objs.ExecCreds}} {
		if *m.dst, err = openPinnedMap(filepath.Join(dir, m.name)); err != nil {
			b.Close()
			return nil, fmt.Errorf("%w: %w", ErrNotAdopted, err)
		}
	}
	if b.baseline, err = readStats(b.objs.Stats); err != nil {
		b.Close()
		return nil, fmt.Errorf("the pinned base sensor: %w", err)
	}
	// as LoadBase attaches them: fork, exec, exit
	for i := range 3 {
		l, err := openPinnedLink(filepath.Join(dir, fmt.Sprintf("link%d", i)))
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("%w: %w", ErrNotAdopted, err)
		}
		b.links = append(b.links, l)
	}
	return b, nil
}

// StopReading records the ring buffer's drops so far, as this run stops
// reading it and leaves the sensor pinned: the next run that adopts it
// tells what was lost while no agent read it (LostUnread).
func (b *Base) StopReading() error {
	st, err := readStats(b.objs.Stats)
	if err != nil {
		return err
	}
	return b.runs.Put(runsDrops, st.RingbufDrops)
}

// LostUnread is what the ring buffer of an adopted sensor lost since the
// last run that stopped cleanly stopped reading it (StopReading).
func (b *Base) LostUnread() (uint64, error) {
	st, err := readStats(b.objs.Stats)
	if err != nil {
		return 0, err
	}
	var before uint64
	if err := b.runs.Lookup(runsDrops, &before); err != nil {
		return 0, fmt.Errorf("reading the drops the last run saw: %w", err)
	}
	return st.RingbufDrops - min(before, st.RingbufDrops), nil
}

// Adopted says whether the sensor is a previous run's (AdoptBase).
func (b *Base) Adopted() bool { return b.adopted }

// RunTag is this run's tag: the hooks loaded with it (Options.RunTag)
// write it into their records.
func (b *Base) RunTag() uint16 { return b.tag }

// Since is when each program began to run; zero for an adopted sensor,
// whose programs ran before this run started.
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

// Stats reads the kernel-side counters, from this run's start on.
func (b *Base) Stats() (Stats, error) {
	s, err := readStats(b.objs.Stats)
	s.RingbufDrops -= min(b.baseline.RingbufDrops, s.RingbufDrops)
	s.Execs -= min(b.baseline.Execs, s.Execs)
	s.Exits -= min(b.baseline.Exits, s.Exits)
	s.Forks -= min(b.baseline.Forks, s.Forks)
	return s, err
}

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
	return pinAll(dir, b.links, map[string]*ebpf.Map{"events": b.objs.Events, "stats": b.objs.Stats,
		"exec_creds": b.objs.ExecCreds, runsPin(): b.runs})
}

// Close detaches and unloads everything that is not pinned.
func (b *Base) Close() error {
	var errs []error
	for _, l := range b.links {
		errs = append(errs, l.Close())
	}
	b.links = nil
	errs = append(errs, b.objs.Close(), b.runs.Close())
	return errors.Join(errs...)
}
