package sensor

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/tetragon-lite/tetragon/bpf"
)

// MaxParams is how many function parameters a kprobe hook can read (the
// x86_64 calling convention passes six in registers).
const MaxParams = 6

// KprobeSpec is a compiled hook on one kernel function: everything
// bpf/kprobe.c needs.
type KprobeSpec struct {
	ID uint32
	// Symbol is the kernel function the hook attaches to.
	Symbol string
	// Syscall says Symbol is an arch syscall entry point (__x64_sys_*):
	// the parameters are then the syscall's arguments, read from the user
	// registers it takes, and SyscallNr goes into the records.
	Syscall   bool
	SyscallNr uint32
	// Params is how many parameters the hook reads (at most MaxParams and
	// the function's arity).
	Params int
	// Return evaluates the selectors when the function returns, with its
	// return value (a kretprobe; the entry probe keeps the parameters).
	Return bool
	// Override serves the hook with an fmod_ret program instead of a
	// kprobe, so that ActOverride selectors can replace the return value.
	// The kernel allows that on security_* functions and functions marked
	// for error injection only.
	Override  bool
	Args      []Arg
	Selectors []Selector
}

// Kprobe is one loaded hook on a kernel function.
type Kprobe struct {
	coll *ebpf.Collection
	// progs are the loaded programs' names, in attach order
	progs []string
	links []link.Link
}

// LoadKprobe loads and attaches a hook on a kernel function whose records
// go to events. On error nothing stays loaded.
func LoadKprobe(spec KprobeSpec, events *ebpf.Map, opts Options) (*Kprobe, error) {
	k, err := loadKprobe(spec, events, opts)
	if err != nil {
		return nil, err
	}
	for _, name := range k.progs {
		l, err := attachKernelFunc(name, spec.Symbol, k.coll.Programs[name])
		if err != nil {
			k.Close()
			return nil, err
		}
		k.links = append(k.links, l)
	}
	return k, nil
}

// loadKprobe loads and configures a hook without attaching it: the
// verifier's verdict and the configuration are independent of whether
// this kernel can attach kprobes.
func loadKprobe(spec KprobeSpec, events *ebpf.Map, opts Options) (*Kprobe, error) {
	if spec.Params < 0 || spec.Params > MaxParams {
		return nil, fmt.Errorf("hook reads %d parameters, at most %d", spec.Params, MaxParams)
	}
	if spec.Override && spec.Return {
		return nil, errors.New("a hook cannot both override the return value and run at return")
	}
	conf, strs, err := encodeConf(HookSpec{ID: spec.ID, Args: spec.Args, Selectors: spec.Selectors})
	if err != nil {
		return nil, err
	}
	cs, err := bpf.LoadKprobe()
	if err != nil {
		return nil, fmt.Errorf("reading the kprobe object: %w", err)
	}
	var sizes, signed [MaxArgs]uint8
	for i, a := range spec.Args {
		if i < MaxArgs {
			sizes[i], signed[i] = a.Size, boolByte(a.Signed)
		}
	}
	for name, v := range map[string]any{
		"syscall_wrapper": spec.Syscall,
		"syscall_nr":      spec.SyscallNr,
		"nparams":         uint32(spec.Params),
		"at_return":       spec.Return,
		"arg_size":        sizes,
		"arg_signed":      signed,
	} {
		if err := cs.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	// Load only the programs this hook attaches: each one costs a
	// verification, and the fmod_ret one cannot load where fentry is missing.
	progs := []string{"gen_kprobe"}
	switch {
	case spec.Override:
		progs = []string{"gen_fmod_ret"}
		cs.Programs["gen_fmod_ret"].AttachTo = spec.Symbol
	case spec.Return:
		// the return probe attaches first: an entry probe alone would
		// save parameters that nothing consumes
		progs = []string{"gen_kretprobe", "gen_kprobe"}
	}
	for name := range cs.Programs {
		if !slices.Contains(progs, name) {
			delete(cs.Programs, name)
		}
	}
	if !spec.Return {
		// the LRU hash of parameters saved at entry is preallocated; a hook
		// that does not run at return never touches it
		cs.Maps["entries"].MaxEntries = 1
	}
	coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{
		Programs:        ebpf.ProgramOptions{KernelTypes: opts.KernelTypes},
		MapReplacements: map[string]*ebpf.Map{"events": events},
	})
	if err != nil {
		what := "kprobe hook"
		if spec.Override {
			// the kernel lets BPF change the return value of security_*
			// functions and of functions marked for error injection only
			what = "fmod_ret hook (Override needs a function whose return value the kernel lets BPF modify: security_* or error injection)"
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("loading %s on %s: %+v", what, spec.Symbol, ve)
		}
		return nil, fmt.Errorf("loading %s on %s: %w", what, spec.Symbol, err)
	}
	k := &Kprobe{coll: coll, progs: progs}
	fail := func(err error) (*Kprobe, error) {
		k.Close()
		return nil, err
	}
	// the configuration has the same layout in both hook objects (bpf/lib/hook.h)
	if err := coll.Maps["conf"].Put(uint32(0), bpf.KprobeGenConf(conf)); err != nil {
		return fail(fmt.Errorf("writing hook config: %w", err))
	}
	for _, key := range strs {
		if err := coll.Maps["strings"].Put(bpf.KprobeLpmKey(key), uint8(1)); err != nil {
			return fail(fmt.Errorf("writing match strings: %w", err))
		}
	}
	return k, nil
}

func attachKernelFunc(prog, symbol string, p *ebpf.Program) (link.Link, error) {
	var l link.Link
	var err error
	switch prog {
	case "gen_fmod_ret":
		l, err = link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachModifyReturn})
		if err != nil {
			return nil, fmt.Errorf("attaching fmod_ret to %s: %w", symbol, err)
		}
	case "gen_kretprobe":
		l, err = link.Kretprobe(symbol, p, nil)
		if err != nil {
			return nil, fmt.Errorf("attaching kretprobe to %s: %w", symbol, err)
		}
	default:
		l, err = link.Kprobe(symbol, p, nil)
		if err != nil {
			return nil, fmt.Errorf("attaching kprobe to %s: %w", symbol, err)
		}
	}
	return l, nil
}

// Stats reads the hook's counters (Cached stays zero: the kprobe object
// keeps no verdict cache, as nothing would tell it about renames).
func (k *Kprobe) Stats() (GenericStats, error) {
	s, err := readGenericStats(k.coll.Maps["stats"])
	var progs []*ebpf.Program
	for _, p := range k.coll.Programs {
		progs = append(progs, p)
	}
	var maps []*ebpf.Map
	for name, m := range k.coll.Maps {
		if name != "events" {
			maps = append(maps, m)
		}
	}
	s.MemoryBytes = memlock(progs, maps)
	return s, err
}

// Pin pins the hook's links (and its counters) under dir, so that it stays
// attached after the agent's file descriptors are closed. Removing dir
// detaches it.
func (k *Kprobe) Pin(dir string) error {
	return pinAll(dir, k.links, map[string]*ebpf.Map{"stats": k.coll.Maps["stats"]})
}

// Close detaches and unloads the hook, unless it is pinned.
func (k *Kprobe) Close() error {
	var errs []error
	for _, l := range k.links {
		errs = append(errs, l.Close())
	}
	k.links = nil
	k.coll.Close()
	return errors.Join(errs...)
}
