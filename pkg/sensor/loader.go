package sensor

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/bpf"
)

// LoaderFunc is the kernel function the loader sensor's kprobe is on: perf
// calls it once per listening event for each new mapping, with the
// mapping's file path and build id.
const LoaderFunc = "perf_event_mmap_output"

// Loader statistics, indexes of bpf/loader.c's stats map.
const (
	loaderStatRecords = 0
	loaderStatDrops   = 1
)

// perfBitBuildID is perf_event_attr's build_id bit (Linux 5.12): mmap2
// records then carry the file's build id instead of its device and inode.
// x/sys names the bits up to mmap2 only.
const perfBitBuildID = unix.CBitFieldMaskBit34

// Loader is the loader sensor (spec.loader): a kprobe on LoaderFunc, and
// the per-CPU perf events that make the kernel describe every new mapping
// while they are open. It writes an OP_LOADER record to the events ring
// buffer for each mapped file with a build id. It cannot be pinned: the
// perf events live only as long as their descriptors, so it observes only
// while the agent runs.
type Loader struct {
	objs bpf.LoaderObjects
	link link.Link
	// perf are the perf events' descriptors, one per CPU
	perf []int
}

// LoadLoader loads and attaches the loader sensor, whose records go to
// events. On error nothing stays loaded.
func LoadLoader(events *ebpf.Map, opts Options) (*Loader, error) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("loader sensor: counting CPUs: %w", err)
	}
	spec, err := bpf.LoadLoader()
	if err != nil {
		return nil, fmt.Errorf("reading the loader object: %w", err)
	}
	spec.Maps["perf_ids"].MaxEntries = uint32(ncpu)
	if err := tagRun(spec, opts.RunTag); err != nil {
		return nil, fmt.Errorf("loader sensor: %w", err)
	}
	l := &Loader{}
	if err := spec.LoadAndAssign(&l.objs, &ebpf.CollectionOptions{
		Programs:        ebpf.ProgramOptions{KernelTypes: opts.KernelTypes},
		MapReplacements: map[string]*ebpf.Map{"events": events},
	}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading the loader sensor: %+v", ve)
		}
		return nil, fmt.Errorf("loading the loader sensor: %w", err)
	}
	for cpu := range ncpu {
		fd, id, err := openMmapEvent(cpu)
		if errors.Is(err, unix.ENODEV) {
			// a possible CPU that is offline runs nothing
			continue
		}
		if err != nil {
			l.Close()
			return nil, err
		}
		l.perf = append(l.perf, fd)
		if err := l.objs.PerfIds.Put(uint32(cpu), id); err != nil {
			l.Close()
			return nil, fmt.Errorf("loader sensor: writing CPU %d's perf event id: %w", cpu, err)
		}
	}
	if l.link, err = link.Kprobe(LoaderFunc, l.objs.LoaderMmap, nil); err != nil {
		l.Close()
		return nil, fmt.Errorf("loader sensor: attaching kprobe to %s: %w", LoaderFunc, err)
	}
	return l, nil
}

// openMmapEvent opens a software perf event on cpu that counts nothing and
// asks for the records of every new mapping, executable or not, with build
// ids (the build id of a library's first, read-only mapping is as good as
// its code's), and returns its descriptor and its id.
func openMmapEvent(cpu int) (int, uint64, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_DUMMY,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Bits:   unix.PerfBitMmap | unix.PerfBitMmap2 | unix.PerfBitMmapData | perfBitBuildID,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			// the build_id bit is what older kernels refuse
			return -1, 0, fmt.Errorf("loader sensor: opening a perf event with mmap build ids on CPU %d (Linux 5.12 or later): %w", cpu, err)
		}
		return -1, 0, fmt.Errorf("loader sensor: opening a perf event on CPU %d: %w", cpu, err)
	}
	var id uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.PERF_EVENT_IOC_ID, uintptr(unsafe.Pointer(&id))); errno != 0 {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("loader sensor: reading CPU %d's perf event id: %w", cpu, errno)
	}
	return fd, id, nil
}

// Stats reads the sensor's counters: Posted counts the records written,
// Drops those the full ring buffer refused.
func (l *Loader) Stats() (GenericStats, error) {
	var s GenericStats
	var err error
	if s.Posted, err = sumPerCPU(l.objs.Stats, loaderStatRecords); err != nil {
		return s, fmt.Errorf("reading loader stats: %w", err)
	}
	if s.Drops, err = sumPerCPU(l.objs.Stats, loaderStatDrops); err != nil {
		return s, fmt.Errorf("reading loader stats: %w", err)
	}
	s.MemoryBytes = memlock([]*ebpf.Program{l.objs.LoaderMmap}, []*ebpf.Map{l.objs.PerfIds, l.objs.LoaderHeap, l.objs.Stats})
	return s, nil
}

// Close detaches the sensor and closes its perf events: the kernel stops
// describing mappings once no such event is left.
func (l *Loader) Close() error {
	var errs []error
	if l.link != nil {
		errs = append(errs, l.link.Close())
		l.link = nil
	}
	for _, fd := range l.perf {
		errs = append(errs, unix.Close(fd))
	}
	l.perf = nil
	errs = append(errs, l.objs.Close())
	return errors.Join(errs...)
}
