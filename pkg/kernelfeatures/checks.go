package kernelfeatures

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
)

// Attach targets. security_file_open exists on every kernel the agent
// supports, has BTF, and its security_ prefix makes it a legal fmod_ret
// target even without CONFIG_FUNCTION_ERROR_INJECTION.
const (
	targetFunc  = "security_file_open"
	lsmHook     = "file_open"
	rawTPName   = "sys_enter"
	tpGroup     = "sched"
	tpName      = "sched_process_exec"
	selfExe     = "/proc/self/exe"
	lsmListPath = "/sys/kernel/security/lsm"
)

// PinDirPattern is the os.MkdirTemp pattern of the directory this process
// pins its test link in; it carries the pid so that concurrent probes are
// told apart.
func PinDirPattern() string { return fmt.Sprintf("tetragon-probe-%d-*", os.Getpid()) }

type check struct {
	name string
	run  func() error
}

// prober carries what the checks share: the outcome of mounting the pseudo
// filesystems some attach paths depend on.
type prober struct {
	tracefsErr    error
	bpffsErr      error
	securityfsErr error
}

func newProber() *prober {
	p := &prober{}
	_, p.tracefsErr = kernelfs.Tracing().Ensure()
	_, p.bpffsErr = kernelfs.BPF().Ensure()
	_, p.securityfsErr = kernelfs.Security().Ensure()
	return p
}

func (p *prober) checks() []check {
	return []check{
		{Kprobe, func() error { return p.kprobe(false) }},
		{Kretprobe, func() error { return p.kprobe(true) }},
		{KprobeMulti, p.kprobeMulti},
		{Fentry, func() error { return p.tracing(ebpf.AttachTraceFEntry, targetFunc) }},
		{Fexit, func() error { return p.tracing(ebpf.AttachTraceFExit, targetFunc) }},
		{FmodRet, func() error { return p.tracing(ebpf.AttachModifyReturn, targetFunc) }},
		{BPFLSM, p.bpfLSM},
		{Tracepoint, p.tracepoint},
		{RawTracepoint, p.rawTracepoint},
		{TpBTF, func() error { return p.tracing(ebpf.AttachTraceRawTp, rawTPName) }},
		{Uprobe, p.uprobe},
		{SendSignal, p.sendSignal},
		{OverrideReturn, p.overrideReturn},
		{Ringbuf, p.ringbuf},
		{BPFLoop, p.bpfLoop},
		{LinkPinning, p.linkPinning},
		{BTF, p.btf},
	}
}

func returnZero() asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
}

func load(spec *ebpf.ProgramSpec) (*ebpf.Program, error) {
	spec.License = "GPL"
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		what := spec.Type.String()
		if spec.AttachType != ebpf.AttachNone {
			what += "/" + spec.AttachType.String()
		}
		return nil, fmt.Errorf("loading %s program: %w", what, err)
	}
	return prog, nil
}

// attached closes a link that was created only to prove it can be.
func attached(l link.Link, err error, what string) error {
	if err != nil {
		return fmt.Errorf("attaching %s: %w", what, err)
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("detaching %s: %w", what, err)
	}
	return nil
}

func (p *prober) kprobe(ret bool) error {
	prog, err := load(&ebpf.ProgramSpec{Type: ebpf.Kprobe, Instructions: returnZero()})
	if err != nil {
		return err
	}
	defer prog.Close()
	if ret {
		l, err := link.Kretprobe(targetFunc, prog, nil)
		return attached(l, err, "kretprobe "+targetFunc)
	}
	l, err := link.Kprobe(targetFunc, prog, nil)
	return attached(l, err, "kprobe "+targetFunc)
}

func (p *prober) kprobeMulti() error {
	prog, err := load(&ebpf.ProgramSpec{
		Type:         ebpf.Kprobe,
		AttachType:   ebpf.AttachTraceKprobeMulti,
		Instructions: returnZero(),
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.KprobeMulti(prog, link.KprobeMultiOptions{Symbols: []string{targetFunc}})
	return attached(l, err, "kprobe_multi "+targetFunc)
}

// tracing covers the BTF-typed hooks: fentry, fexit, fmod_ret and tp_btf.
func (p *prober) tracing(at ebpf.AttachType, target string) error {
	prog, err := load(&ebpf.ProgramSpec{
		Type:         ebpf.Tracing,
		AttachType:   at,
		AttachTo:     target,
		Instructions: returnZero(),
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: at})
	return attached(l, err, at.String()+" "+target)
}

// bpfLSM needs both a working attach and "bpf" among the active LSMs: with
// BPF LSM compiled in but missing from lsm=, programs attach and never run.
func (p *prober) bpfLSM() error {
	var errs []error
	prog, err := load(&ebpf.ProgramSpec{
		Type:         ebpf.LSM,
		AttachType:   ebpf.AttachLSMMac,
		AttachTo:     lsmHook,
		Instructions: returnZero(),
	})
	if err != nil {
		errs = append(errs, err)
	} else {
		defer prog.Close()
		l, err := link.AttachLSM(link.LSMOptions{Program: prog})
		if err := attached(l, err, "lsm/"+lsmHook); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.bpfLSMActive(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (p *prober) bpfLSMActive() error {
	if p.securityfsErr != nil {
		return fmt.Errorf("reading the active LSM list: %w", p.securityfsErr)
	}
	raw, err := os.ReadFile(lsmListPath)
	if err != nil {
		return fmt.Errorf("reading the active LSM list: %w", err)
	}
	list := strings.TrimSpace(string(raw))
	if !slices.Contains(strings.Split(list, ","), "bpf") {
		return fmt.Errorf("bpf is not an active LSM (%s: %s; boot with lsm=...,bpf)", lsmListPath, list)
	}
	return nil
}

func (p *prober) tracepoint() error {
	if p.tracefsErr != nil {
		return fmt.Errorf("tracefs is needed for tracepoint ids: %w", p.tracefsErr)
	}
	prog, err := load(&ebpf.ProgramSpec{Type: ebpf.TracePoint, Instructions: returnZero()})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.Tracepoint(tpGroup, tpName, prog, nil)
	return attached(l, err, "tracepoint "+tpGroup+"/"+tpName)
}

func (p *prober) rawTracepoint() error {
	prog, err := load(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, Instructions: returnZero()})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: rawTPName, Program: prog})
	return attached(l, err, "raw_tracepoint "+rawTPName)
}

// uprobe attaches to the entry point of the running executable: it exists
// whether or not the binary was stripped of symbols.
func (p *prober) uprobe() error {
	off, err := entryFileOffset(selfExe)
	if err != nil {
		return err
	}
	prog, err := load(&ebpf.ProgramSpec{Type: ebpf.Kprobe, Instructions: returnZero()})
	if err != nil {
		return err
	}
	defer prog.Close()
	ex, err := link.OpenExecutable(selfExe)
	if err != nil {
		return fmt.Errorf("opening %s: %w", selfExe, err)
	}
	l, err := ex.Uprobe("entry", prog, &link.UprobeOptions{Address: off})
	return attached(l, err, fmt.Sprintf("uprobe %s+%#x", selfExe, off))
}

// entryFileOffset maps an ELF file's entry address to its file offset,
// which is what uprobes are placed by.
func entryFileOffset(path string) (uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading ELF %s: %w", path, err)
	}
	defer f.Close()
	for _, ph := range f.Progs {
		if ph.Type == elf.PT_LOAD && ph.Flags&elf.PF_X != 0 &&
			f.Entry >= ph.Vaddr && f.Entry < ph.Vaddr+ph.Memsz {
			return f.Entry - ph.Vaddr + ph.Off, nil
		}
	}
	return 0, fmt.Errorf("entry %#x of %s is in no executable segment", f.Entry, path)
}

// Helpers are decided by the verifier alone: it rejects a call to a helper
// the kernel lacks or does not allow for the program type at load time.

func (p *prober) sendSignal() error {
	prog, err := load(&ebpf.ProgramSpec{
		Type: ebpf.TracePoint,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R1, 0),
			asm.FnSendSignal.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		return err
	}
	return prog.Close()
}

// overrideReturn needs more than the verifier: attaching checks that the
// target is on the error-injection list, so the probe attaches to a
// syscall entry. The override runs only for pid_tgid 0 (the idle task,
// which makes no syscalls), so nothing is overridden while it is attached.
func (p *prober) overrideReturn() error {
	target, err := syscallSymbol("getppid")
	if err != nil {
		return err
	}
	prog, err := load(&ebpf.ProgramSpec{
		Type: ebpf.Kprobe,
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.FnGetCurrentPidTgid.Call(),
			asm.JNE.Imm(asm.R0, 0, "out"),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, -1),
			asm.FnOverrideReturn.Call(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.Kprobe(target, prog, nil)
	return attached(l, err, "kprobe with bpf_override_return on "+target)
}

func syscallSymbol(name string) (string, error) {
	switch runtime.GOARCH {
	case "amd64":
		return "__x64_sys_" + name, nil
	case "arm64":
		return "__arm64_sys_" + name, nil
	}
	return "", fmt.Errorf("no syscall symbol prefix known for %s", runtime.GOARCH)
}

func (p *prober) ringbuf() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: uint32(os.Getpagesize())})
	if err != nil {
		return fmt.Errorf("creating ring buffer map: %w", err)
	}
	defer m.Close()
	prog, err := load(&ebpf.ProgramSpec{
		Type: ebpf.TracePoint,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R1, 0),
			asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			asm.Mov.Imm(asm.R3, 8),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnRingbufOutput.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		return err
	}
	return prog.Close()
}

// bpfLoop needs BTF function info: the verifier only accepts a callback
// subprogram it can type-check.
func (p *prober) bpfLoop() error {
	const callback = "probe_loop_cb"
	i64 := &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}
	voidPtr := &btf.Pointer{Target: &btf.Void{}}
	mainFn := &btf.Func{
		Name:    "probe_loop",
		Type:    &btf.FuncProto{Return: i64, Params: []btf.FuncParam{{Name: "ctx", Type: voidPtr}}},
		Linkage: btf.GlobalFunc,
	}
	cbFn := &btf.Func{
		Name: callback,
		Type: &btf.FuncProto{Return: i64, Params: []btf.FuncParam{
			{Name: "index", Type: &btf.Int{Name: "unsigned long", Size: 8}},
			{Name: "ctx", Type: voidPtr},
		}},
		Linkage: btf.StaticFunc,
	}
	prog, err := load(&ebpf.ProgramSpec{
		Type: ebpf.TracePoint,
		Instructions: asm.Instructions{
			btf.WithFuncMetadata(asm.Mov.Imm(asm.R1, 1), mainFn),
			asm.Instruction{
				OpCode:   asm.LoadImmOp(asm.DWord),
				Dst:      asm.R2,
				Src:      asm.PseudoFunc,
				Constant: -1,
			}.WithReference(callback),
			asm.Mov.Imm(asm.R3, 0),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnLoop.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
			// The callback returns 0: continue (once, as nr_loops is 1).
			btf.WithFuncMetadata(asm.Mov.Imm(asm.R0, 0), cbFn).WithSymbol(callback),
			asm.Return(),
		},
	})
	if err != nil {
		return err
	}
	return prog.Close()
}

// linkPinning pins a real link into a fresh directory on bpffs, opens it
// again from the pin, and removes both.
func (p *prober) linkPinning() error {
	if p.bpffsErr != nil {
		return fmt.Errorf("bpffs is needed for pins: %w", p.bpffsErr)
	}
	prog, err := load(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, Instructions: returnZero()})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: rawTPName, Program: prog})
	if err != nil {
		return fmt.Errorf("attaching raw_tracepoint %s to pin: %w", rawTPName, err)
	}
	defer l.Close()

	dir, err := os.MkdirTemp(kernelfs.BPF().Path, PinDirPattern())
	if err != nil {
		return fmt.Errorf("creating pin directory: %w", err)
	}
	defer os.RemoveAll(dir)
	pin := filepath.Join(dir, "link")
	if err := l.Pin(pin); err != nil {
		return fmt.Errorf("pinning link at %s: %w", pin, err)
	}
	again, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		return fmt.Errorf("opening pinned link %s: %w", pin, err)
	}
	if err := again.Close(); err != nil {
		return fmt.Errorf("closing pinned link %s: %w", pin, err)
	}
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpinning link %s: %w", pin, err)
	}
	return nil
}

func (p *prober) btf() error {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("loading kernel BTF: %w", err)
	}
	// A spec without the task struct would be useless to every BTF hook.
	var task *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		return fmt.Errorf("kernel BTF lacks task_struct: %w", err)
	}
	return nil
}
