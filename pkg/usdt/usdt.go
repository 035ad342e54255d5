// Package usdt reads the USDT probes (SystemTap's statically defined
// tracing points, <sys/sdt.h>) an ELF file declares in its .note.stapsdt
// notes, and the x86-64 argument specs of each (-4@%eax, 8@-16(%rbp),
// 4@$5): where the probe is in the file, its semaphore, and where each
// argument is when the probe fires.
package usdt

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ntSTAPSDT is the note type of a probe descriptor, owner "stapsdt".
const ntSTAPSDT = 3

// MaxArgs is how many arguments a probe can declare (sys/sdt.h's limit).
const MaxArgs = 12

// Probe is one USDT probe of an ELF file.
type Probe struct {
	Provider, Name string
	// Offset is the file offset of the probe's instruction (a nop), where
	// a uprobe attaches.
	Offset uint64
	// Semaphore is the file offset of the probe's semaphore, a counter the
	// program reads to know whether anyone traces the probe (the uprobe's
	// reference counter, ref_ctr_offset); 0 when the probe has none.
	Semaphore uint64
	// ArgSpec is the arguments as written in the note.
	ArgSpec string
	Args    []Arg
}

// Loc says where an argument is when the probe fires.
type Loc uint8

// Argument locations.
const (
	// LocConst: the value is Value ($5).
	LocConst Loc = iota + 1
	// LocReg: the value is in register Reg (%eax).
	LocReg
	// LocMem: the value is in memory at register Reg plus Value
	// (-16(%rbp)).
	LocMem
)

// Arg is one argument of a probe.
type Arg struct {
	Loc Loc
	// Reg is the register (LocReg, LocMem), as its offset in the kernel's
	// x86-64 struct pt_regs.
	Reg uint16
	// RegName is the register as written (eax), for messages.
	RegName string
	// Value is the constant (LocConst) or the memory offset (LocMem).
	Value int64
	// Size is the value's size in bytes (1, 2, 4 or 8), Signed its
	// signedness: -4 is a signed 32-bit value.
	Size   uint8
	Signed bool
	// Spec is the argument as written (-4@-12(%rbp)).
	Spec string
}

func (a Arg) String() string { return a.Spec }

// offsets in struct pt_regs (arch/x86/include/asm/ptrace.h, x86_64)
const (
	regR15 = 0
	regR14 = 8
	regR13 = 16
	regR12 = 24
	regBP  = 32
	regBX  = 40
	regR11 = 48
	regR10 = 56
	regR9  = 64
	regR8  = 72
	regAX  = 80
	regCX  = 88
	regDX  = 96
	regSI  = 104
	regDI  = 112
	regIP  = 128
	regSP  = 152
)

// registers maps every x86-64 general purpose register name (any width)
// to its pt_regs offset; the value's width comes from the arg's size. The
// high byte registers (ah, bh, ch, dh) are not there: their value is not
// the low bits of the register.
var registers = func() map[string]uint16 {
	m := map[string]uint16{"rip": regIP}
	for _, r := range []struct {
		names []string
		off   uint16
	}{
		{[]string{"rax", "eax", "ax", "al"}, regAX},
		{[]string{"rbx", "ebx", "bx", "bl"}, regBX},
		{[]string{"rcx", "ecx", "cx", "cl"}, regCX},
		{[]string{"rdx", "edx", "dx", "dl"}, regDX},
		{[]string{"rsi", "esi", "si", "sil"}, regSI},
		{[]string{"rdi", "edi", "di", "dil"}, regDI},
		{[]string{"rbp", "ebp", "bp", "bpl"}, regBP},
		{[]string{"rsp", "esp", "sp", "spl"}, regSP},
	} {
		for _, n := range r.names {
			m[n] = r.off
		}
	}
	for i, off := range []uint16{regR8, regR9, regR10, regR11, regR12, regR13, regR14, regR15} {
		n := "r" + strconv.Itoa(8+i)
		for _, suffix := range []string{"", "d", "w", "b"} {
			m[n+suffix] = off
		}
	}
	return m
}()

// Register returns the pt_regs offset of x86-64 register name (rax, eax,
// %r8, ...), and whether there is one.
func Register(name string) (uint16, bool) {
	off, ok := registers[strings.TrimPrefix(strings.ToLower(name), "%")]
	return off, ok
}

// ParseArgs parses a probe's argument specs, separated by spaces.
func ParseArgs(spec string) ([]Arg, error) {
	var args []Arg
	for _, f := range strings.Fields(spec) {
		if len(args) == MaxArgs {
			return nil, fmt.Errorf("more than %d arguments in %q", MaxArgs, spec)
		}
		a, err := ParseArg(f)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", len(args), err)
		}
		args = append(args, a)
	}
	return args, nil
}

// ParseArg parses one x86-64 argument spec: [-]SIZE@OPERAND, where the
// operand is %REG, $CONST, OFF(%REG) or (%REG). A scaled index
// (OFF(%REG,%REG,SCALE)) and symbol-relative operands are not served.
func ParseArg(spec string) (Arg, error) {
	a := Arg{Spec: spec}
	at := strings.IndexByte(spec, '@')
	if at < 0 {
		return a, fmt.Errorf("%q: no size (want SIZE@OPERAND, e.g. -4@%%eax)", spec)
	}
	size, err := strconv.Atoi(spec[:at])
	if err != nil {
		return a, fmt.Errorf("%q: size %q is not a number", spec, spec[:at])
	}
	if size < 0 {
		a.Signed, size = true, -size
	}
	switch size {
	case 1, 2, 4, 8:
		a.Size = uint8(size)
	default:
		return a, fmt.Errorf("%q: size %d is not 1, 2, 4 or 8 bytes", spec, size)
	}
	op := spec[at+1:]
	switch {
	case strings.HasPrefix(op, "$"):
		v, err := parseInt(op[1:])
		if err != nil {
			return a, fmt.Errorf("%q: constant %q: %w", spec, op[1:], err)
		}
		a.Loc, a.Value = LocConst, v
	case strings.HasPrefix(op, "%"):
		reg, ok := Register(op)
		if !ok {
			return a, fmt.Errorf("%q: unknown register %q", spec, op)
		}
		a.Loc, a.Reg, a.RegName = LocReg, reg, op[1:]
	default:
		open := strings.IndexByte(op, '(')
		if open < 0 || !strings.HasSuffix(op, ")") {
			return a, fmt.Errorf("%q: operand %q is not %%REG, $CONST or OFF(%%REG)", spec, op)
		}
		inner := op[open+1 : len(op)-1]
		if strings.Contains(inner, ",") {
			return a, fmt.Errorf("%q: scaled index operands (OFF(%%BASE,%%INDEX,SCALE)) are not supported", spec)
		}
		if !strings.HasPrefix(inner, "%") {
			return a, fmt.Errorf("%q: operand %q is not %%REG, $CONST or OFF(%%REG)", spec, op)
		}
		reg, ok := Register(inner)
		if !ok {
			return a, fmt.Errorf("%q: unknown register %q", spec, inner)
		}
		if reg == regIP {
			return a, fmt.Errorf("%q: %%rip-relative operands (a global variable) are not supported", spec)
		}
		var off int64
		if open > 0 {
			if off, err = parseInt(op[:open]); err != nil {
				return a, fmt.Errorf("%q: offset %q: %w", spec, op[:open], err)
			}
		}
		a.Loc, a.Reg, a.RegName, a.Value = LocMem, reg, inner[1:], off
	}
	return a, nil
}

// parseInt reads a decimal or 0x hexadecimal integer, possibly negative.
func parseInt(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	u, err := strconv.ParseUint(strings.TrimPrefix(s, "-"), 0, 64)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// Read returns the USDT probes of the ELF file at path.
func Read(path string) ([]Probe, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s as ELF: %w", path, err)
	}
	defer f.Close()
	probes, err := FromELF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return probes, nil
}

// FromELF returns the USDT probes of an ELF file.
func FromELF(f *elf.File) ([]Probe, error) {
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("not an x86-64 ELF file (%s, %s): USDT argument specs are read for x86-64 only", f.Class, f.Machine)
	}
	notes := f.Section(".note.stapsdt")
	if notes == nil {
		return nil, nil
	}
	data, err := notes.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .note.stapsdt: %w", err)
	}
	// prelink moves .stapsdt.base, and the notes' pc with it: a pc is
	// relative to the base the note records
	var base uint64
	var haveBase bool
	if s := f.Section(".stapsdt.base"); s != nil {
		base, haveBase = s.Addr, true
	}
	var probes []Probe
	for len(data) > 0 {
		if len(data) < 12 {
			return nil, fmt.Errorf(".note.stapsdt: truncated note header")
		}
		namesz := uint64(f.ByteOrder.Uint32(data[0:]))
		descsz := uint64(f.ByteOrder.Uint32(data[4:]))
		typ := f.ByteOrder.Uint32(data[8:])
		data = data[12:]
		nameEnd, descEnd := align4(namesz), align4(namesz)+align4(descsz)
		if namesz > uint64(len(data)) || descsz > uint64(len(data)) || descEnd > uint64(len(data)) {
			return nil, fmt.Errorf(".note.stapsdt: note of %d+%d bytes, %d left", namesz, descsz, len(data))
		}
		name, desc := data[:namesz], data[nameEnd:nameEnd+descsz]
		data = data[descEnd:]
		if typ != ntSTAPSDT || string(bytes.TrimRight(name, "\x00")) != "stapsdt" {
			continue
		}
		p, err := readNote(f, desc, base, haveBase)
		if err != nil {
			return nil, fmt.Errorf(".note.stapsdt: probe %d: %w", len(probes), err)
		}
		probes = append(probes, p)
	}
	return probes, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// readNote reads one probe descriptor: pc, base and semaphore addresses,
// then provider, name and arguments, each NUL-terminated.
func readNote(f *elf.File, desc []byte, base uint64, haveBase bool) (Probe, error) {
	var p Probe
	if len(desc) < 24 {
		return p, fmt.Errorf("descriptor of %d bytes, want at least 24", len(desc))
	}
	pc := f.ByteOrder.Uint64(desc[0:])
	noteBase := f.ByteOrder.Uint64(desc[8:])
	sem := f.ByteOrder.Uint64(desc[16:])
	strs := strings.SplitN(string(desc[24:]), "\x00", 4)
	if len(strs) < 4 {
		return p, fmt.Errorf("provider, name and arguments are not three NUL-terminated strings")
	}
	p.Provider, p.Name, p.ArgSpec = strs[0], strs[1], strs[2]
	if haveBase && noteBase != 0 {
		pc += base - noteBase
		if sem != 0 {
			sem += base - noteBase
		}
	}
	var err error
	if p.Offset, err = fileOffset(f, pc, true); err != nil {
		return p, fmt.Errorf("%s:%s: location %#x: %w", p.Provider, p.Name, pc, err)
	}
	if sem != 0 {
		if p.Semaphore, err = fileOffset(f, sem, false); err != nil {
			return p, fmt.Errorf("%s:%s: semaphore %#x: %w", p.Provider, p.Name, sem, err)
		}
	}
	if p.Args, err = ParseArgs(p.ArgSpec); err != nil {
		return p, fmt.Errorf("%s:%s: %w", p.Provider, p.Name, err)
	}
	return p, nil
}

// fileOffset converts a virtual address of the file to its offset in the
// file, through the loadable segment (code) or the section (semaphore,
// in .probes or .data) that holds it.
func fileOffset(f *elf.File, addr uint64, code bool) (uint64, error) {
	if code {
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && addr >= p.Vaddr && addr-p.Vaddr < p.Filesz {
				return addr - p.Vaddr + p.Off, nil
			}
		}
		return 0, errors.New("in no executable segment")
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Flags&elf.SHF_ALLOC != 0 && addr >= s.Addr && addr-s.Addr < s.Size {
			return addr - s.Addr + s.Offset, nil
		}
	}
	return 0, errors.New("in no section of the file")
}

// Find returns the sites of probe provider:name of the ELF file at path:
// a probe used in several places (or inlined) has one note per place.
func Find(path, provider, name string) ([]Probe, error) {
	probes, err := Read(path)
	if err != nil {
		return nil, err
	}
	var sites []Probe
	var have []string
	for _, p := range probes {
		if p.Provider == provider && p.Name == name {
			sites = append(sites, p)
		}
		if n := p.Provider + ":" + p.Name; len(have) < 10 && !slices.Contains(have, n) {
			have = append(have, n)
		}
	}
	switch {
	case len(sites) > 0:
		return sites, nil
	case len(have) == 0:
		return nil, fmt.Errorf("%s declares no USDT probes (no .note.stapsdt notes)", path)
	}
	return nil, fmt.Errorf("%s has no USDT probe %s:%s (it has %s)", path, provider, name, strings.Join(have, ", "))
}
