package sensor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// pinAll pins links as dir/link<i> and maps by name. A pinned link keeps
// its program attached, and the program its maps, with no process holding
// them: that is what keeps enforcement in place while the agent is down.
func pinAll(dir string, links []link.Link, maps map[string]*ebpf.Map) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating pin directory: %w", err)
	}
	for i, l := range links {
		p := filepath.Join(dir, fmt.Sprintf("link%d", i))
		if err := l.Pin(p); err != nil {
			return fmt.Errorf("pinning link %s: %w", p, err)
		}
	}
	for name, m := range maps {
		p := filepath.Join(dir, name)
		if err := m.Pin(p); err != nil {
			return fmt.Errorf("pinning map %s: %w", p, err)
		}
	}
	return nil
}

// openPinnedMap opens the map pinned at path as a handle of its own,
// which pinning elsewhere does not move (ebpf.Map.Pin renames the pin of
// a map it opened from one).
func openPinnedMap(path string) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.Clone()
}

// openPinnedLink is openPinnedMap for a link.
func openPinnedLink(path string) (link.Link, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return nil, fmt.Errorf("reading pinned link %s: %w", path, err)
	}
	return link.NewFromID(info.ID)
}

// openPinnedProgram is openPinnedMap for a program.
func openPinnedProgram(path string) (*ebpf.Program, error) {
	p, err := ebpf.LoadPinnedProgram(path, nil)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Clone()
}

// objectFields lists the maps and programs of a bpf2go objects struct
// (objs points to it) by their names in the object, as fields to load
// into: a pinned object is opened by those names.
func objectFields(objs any) (map[string]**ebpf.Map, map[string]**ebpf.Program) {
	maps, progs := map[string]**ebpf.Map{}, map[string]**ebpf.Program{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			f, sf := v.Field(i), v.Type().Field(i)
			switch {
			case !sf.IsExported():
			case sf.Anonymous:
				walk(f)
			default:
				switch p := f.Addr().Interface().(type) {
				case **ebpf.Map:
					maps[sf.Tag.Get("ebpf")] = p
				case **ebpf.Program:
					progs[sf.Tag.Get("ebpf")] = p
				}
			}
		}
	}
	walk(reflect.ValueOf(objs).Elem())
	return maps, progs
}

// RemovePinned detaches everything pinned under dir and removes the pins.
// Unpinning alone would leave the detach to a kernel worker, some time
// later; holding each link open across the unpin and closing it then
// detaches it before this returns.
func RemovePinned(dir string) error {
	var links []link.Link
	var errs []error
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "link") {
			return nil
		}
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("opening pinned link %s: %w", path, err))
			return nil
		}
		links = append(links, l)
		return nil
	})
	errs = append(errs, os.RemoveAll(dir))
	for _, l := range links {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// memlock sums what the kernel charges for programs and maps. The ring
// buffer all hooks share is the base sensor's, and not passed here.
func memlock(progs []*ebpf.Program, maps []*ebpf.Map) uint64 {
	var n uint64
	for _, p := range progs {
		if info, err := p.Info(); err == nil {
			if m, ok := info.Memlock(); ok {
				n += m
			}
		}
	}
	for _, m := range maps {
		if info, err := m.Info(); err == nil {
			if b, ok := info.Memlock(); ok {
				n += b
			}
		}
	}
	return n
}
