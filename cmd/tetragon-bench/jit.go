package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// dumpJIT writes the machine code the kernel's JIT made of a loaded
// program into dir, one file per function, named as its kernel symbol
// (bpf_prog_<tag>_<name>.bin). A `perf record` sample in a BPF program
// names its symbol and offset; `objdump -D -b binary -mi386:x86-64` of the
// symbol's file then shows the instruction, and so which load of the
// program the time goes to. bpftool does the same only where it is built
// with a disassembler, which Debian's is not.
func dumpJIT(id ebpf.ProgramID, dir string) error {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return fmt.Errorf("program %d: %w", id, err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return fmt.Errorf("program %d: %w", id, err)
	}
	insns, ok := info.JitedInsns()
	addrs, ok2 := info.JitedKsymAddrs()
	lens, ok3 := info.JitedFuncLens()
	if !ok || !ok2 || !ok3 || len(addrs) != len(lens) {
		return fmt.Errorf("program %d: the kernel gave no JIT image (is net.core.bpf_jit_kallsyms on, and are we root?)", id)
	}
	names, err := bpfSymbols()
	if err != nil {
		return err
	}
	off := 0
	for i, addr := range addrs {
		end := off + int(lens[i])
		if end > len(insns) {
			return fmt.Errorf("program %d: function %d ends past the image (%d of %d bytes)", id, i, end, len(insns))
		}
		name := names[uint64(addr)]
		if name == "" {
			name = fmt.Sprintf("func%d", i)
		}
		file := filepath.Join(dir, name+".bin")
		if err := os.WriteFile(file, insns[off:end], 0o644); err != nil {
			return err
		}
		fmt.Printf("%#x %6d bytes  %s\n", addr, lens[i], file)
		off = end
	}
	return nil
}

// bpfSymbols maps the kernel's BPF symbols' addresses to their names.
func bpfSymbols() (map[uint64]string, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[uint64]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// "ffffffffc0028f58 t bpf_prog_254163af547e8872_cached	[bpf]"
		fields := strings.Fields(s.Text())
		if len(fields) < 4 || fields[3] != "[bpf]" {
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			continue
		}
		names[addr] = fields[2]
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/kallsyms: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("/proc/kallsyms lists no BPF symbol (are we root?)")
	}
	return names, nil
}
