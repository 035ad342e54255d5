package hookevent

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// symbolizer names the frames of the stacks that kernelStackTrace and
// userStackTrace record: kernel addresses from /proc/kallsyms (read once),
// user addresses from the process's mappings (/proc/<pid>/maps) and the
// mapped files' ELF symbol tables (cached per file). A process that has
// exited by the time its event is read leaves its frames as bare
// addresses.
type symbolizer struct {
	mu     sync.Mutex
	ksyms  []ksym
	kerr   error
	kread  bool
	files  map[fileKey]*elfSyms
	procfs string // "/proc"; tests may point elsewhere
}

type ksym struct {
	addr uint64
	name string
}

type fileKey struct {
	dev   string
	inode uint64
}

// elfSyms are a file's function symbols, sorted by address, and its
// loadable segments, which map file offsets to the symbols' addresses.
type elfSyms struct {
	syms  []elf.Symbol
	progs []elf.ProgHeader
	// gotab names the functions of a Go binary without a symbol table
	// (go test and go run strip it) from its .gopclntab
	gotab *gosym.Table
}

// maxCachedFiles bounds the ELF symbol cache; past it, it starts over.
const maxCachedFiles = 64

func newSymbolizer() *symbolizer {
	return &symbolizer{files: map[fileKey]*elfSyms{}, procfs: "/proc"}
}

// kernel names kernel addresses.
func (s *symbolizer) kernel(addrs []uint64) []*api.StackTraceEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.kread {
		s.kread = true
		s.ksyms, s.kerr = readKallsyms(filepath.Join(s.procfs, "kallsyms"))
	}
	out := make([]*api.StackTraceEntry, 0, len(addrs))
	for _, a := range addrs {
		e := &api.StackTraceEntry{Address: a}
		i, found := slices.BinarySearchFunc(s.ksyms, a, func(k ksym, a uint64) int {
			switch {
			case k.addr < a:
				return -1
			case k.addr > a:
				return 1
			}
			return 0
		})
		if !found {
			i--
		}
		if i >= 0 && i < len(s.ksyms) {
			e.Symbol, e.Offset = s.ksyms[i].name, a-s.ksyms[i].addr
		}
		out = append(out, e)
	}
	return out
}

// readKallsyms reads the kernel's text symbols, sorted by address. All
// addresses zero means kptr_restrict hides them from this process.
func readKallsyms(path string) ([]ksym, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading kernel symbols: %w", err)
	}
	defer f.Close()
	var syms []ksym
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		switch fields[1] {
		case "T", "t", "W", "w":
		default:
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil || addr == 0 {
			continue
		}
		name := fields[2]
		if len(fields) > 3 {
			name += " " + fields[3] // the module, [name]
		}
		syms = append(syms, ksym{addr, name})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading kernel symbols: %w", err)
	}
	if len(syms) == 0 {
		return nil, errors.New("reading kernel symbols: /proc/kallsyms shows no addresses (kptr_restrict)")
	}
	slices.SortFunc(syms, func(a, b ksym) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	return syms, nil
}

// mapping is one file-backed line of /proc/<pid>/maps.
type mapping struct {
	start, end, off uint64
	key             fileKey
	path            string
}

// user names the user addresses of process pid.
func (s *symbolizer) user(pid uint32, addrs []uint64) []*api.StackTraceEntry {
	maps, _ := readMaps(filepath.Join(s.procfs, strconv.FormatUint(uint64(pid), 10), "maps"))
	out := make([]*api.StackTraceEntry, 0, len(addrs))
	for _, a := range addrs {
		e := &api.StackTraceEntry{Address: a}
		i := slices.IndexFunc(maps, func(m mapping) bool { return m.start <= a && a < m.end })
		if i >= 0 {
			m := maps[i]
			e.Module = m.path
			if syms := s.elf(pid, m); syms != nil {
				e.Symbol, e.Offset = syms.lookup(a - m.start + m.off)
			}
		}
		out = append(out, e)
	}
	return out
}

// readMaps reads a process's file-backed mappings.
func readMaps(path string) ([]mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseMaps(string(data)), nil
}

// parseMaps parses the lines of a /proc/<pid>/maps file, keeping those
// that map a file.
func parseMaps(data string) []mapping {
	var out []mapping
	for _, line := range strings.Split(data, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 || !strings.HasPrefix(fields[5], "/") {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(fields[2], 16, 64)
		inode, err4 := strconv.ParseUint(fields[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		out = append(out, mapping{start: start, end: end, off: off, key: fileKey{fields[3], inode},
			path: strings.Join(fields[5:], " ")})
	}
	return out
}

// elf returns the symbols of the file mapping m maps, read through the
// process's root (the path is the process's own, in its mount namespace).
func (s *symbolizer) elf(pid uint32, m mapping) *elfSyms {
	s.mu.Lock()
	defer s.mu.Unlock()
	if syms, ok := s.files[m.key]; ok {
		return syms
	}
	if len(s.files) >= maxCachedFiles {
		clear(s.files)
	}
	syms := readELFSyms(filepath.Join(s.procfs, strconv.FormatUint(uint64(pid), 10), "root", m.path))
	s.files[m.key] = syms // nil too: not an ELF file, or unreadable
	return syms
}

func readELFSyms(path string) *elfSyms {
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	es := &elfSyms{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			es.progs = append(es.progs, p.ProgHeader)
		}
	}
	syms, _ := f.Symbols()
	dyn, _ := f.DynamicSymbols()
	for _, sym := range append(syms, dyn...) {
		// functions, and the untyped symbols of code sections (Go's
		// linker types most of its functions so)
		t := elf.ST_TYPE(sym.Info)
		if sym.Value == 0 || t != elf.STT_FUNC && t != elf.STT_NOTYPE {
			continue
		}
		if i := int(sym.Section); sym.Section == elf.SHN_UNDEF || i >= len(f.Sections) || f.Sections[i].Flags&elf.SHF_EXECINSTR == 0 {
			continue
		}
		es.syms = append(es.syms, sym)
	}
	if len(es.syms) == 0 {
		pcln, text := f.Section(".gopclntab"), f.Section(".text")
		if pcln != nil && text != nil {
			if data, err := pcln.Data(); err == nil {
				es.gotab, _ = gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
			}
		}
	}
	slices.SortFunc(es.syms, func(a, b elf.Symbol) int {
		switch {
		case a.Value < b.Value:
			return -1
		case a.Value > b.Value:
			return 1
		}
		return 0
	})
	return es
}

// lookup names file offset off: the loadable segment holding it gives its
// address in the ELF's symbol space, and the function covering that
// address (or, for a symbol of unknown size, the last one before it) its
// name and the offset into it.
func (es *elfSyms) lookup(off uint64) (string, uint64) {
	var addr uint64
	found := false
	for _, p := range es.progs {
		if p.Off <= off && off < p.Off+p.Filesz {
			addr, found = off-p.Off+p.Vaddr, true
			break
		}
	}
	if !found {
		return "", 0
	}
	if es.gotab != nil {
		if fn := es.gotab.PCToFunc(addr); fn != nil {
			return fn.Name, addr - fn.Entry
		}
		return "", 0
	}
	i, _ := slices.BinarySearchFunc(es.syms, addr+1, func(s elf.Symbol, a uint64) int {
		if s.Value < a {
			return -1
		}
		return 1
	})
	i-- // the last symbol at or below addr
	if i < 0 {
		return "", 0
	}
	sym := es.syms[i]
	if sym.Size != 0 && addr >= sym.Value+sym.Size {
		return "", 0
	}
	return sym.Name, addr - sym.Value
}
