package sensor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/bpf"
)

// refreshFlags says what of the process's exec record a match of selector
// s brings up to date (selector.refresh in bpf/lib/hook.h): after a change
// is reported, the new capabilities or namespaces are the reference, so
// the same change is reported once.
func refreshFlags(s Selector) uint8 {
	var f uint8
	for _, m := range s.Matches {
		switch m.Kind {
		case MatchCapChange:
			f |= uint8(bpf.HookRefreshFlagREFRESH_CAPS)
		case MatchNsChange:
			f |= uint8(bpf.HookRefreshFlagREFRESH_NS)
		}
	}
	return f
}

// UsesExecCreds reports whether a hook has matchCapabilityChanges or
// matchNamespaceChanges entries, which read the exec records of the base
// sensor (Options.ExecCreds).
func UsesExecCreds(spec HookSpec) bool {
	for _, s := range spec.Selectors {
		if refreshFlags(s) != 0 {
			return true
		}
	}
	return false
}

// ExecCreds is the map of the capabilities and namespaces every process
// had at its last exec (exec_creds in bpf/lib/common.h), which the hook
// objects share.
func (b *Base) ExecCreds() *ebpf.Map { return b.objs.ExecCreds }

// nsFiles are the /proc/<pid>/ns entries in enum ns_kind order.
var nsFiles = [nsKinds]string{"uts", "ipc", "mnt", "pid", "pid_for_children", "net", "time", "time_for_children", "cgroup", "user"}

// SeedExecCreds writes an exec record for each process under procRoot
// that has none: processes that started before the base sensor was
// attached. Their record is what they hold now, not what they held at
// their exec (as in Tetragon, whose /proc scan records the same). A
// process that exits during the scan is skipped; it returns how many
// records it wrote.
func SeedExecCreds(m *ebpf.Map, procRoot string) (int, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", procRoot, err)
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || pid == 0 {
			continue
		}
		v, err := ReadProcCreds(filepath.Join(procRoot, e.Name()))
		if err != nil {
			// gone while we read, or a kernel thread without the fields
			continue
		}
		err = m.Update(uint32(pid), v, ebpf.UpdateNoExist)
		if errors.Is(err, ebpf.ErrKeyExist) {
			// the exec sensor wrote it first: that one is exact
			continue
		}
		if err != nil {
			return n, fmt.Errorf("writing the exec record of pid %d: %w", pid, err)
		}
		n++
	}
	return n, nil
}

// ReadProcCreds reads the capability sets (status: CapEff, CapInh,
// CapPrm) and namespace inode numbers (ns/*) of the process at dir, a
// /proc/<pid> directory, as an exec record. A namespace that cannot be
// read stays 0, which the kernel side does not compare.
func ReadProcCreds(dir string) (bpf.ProcessExecCreds, error) {
	var v bpf.ProcessExecCreds
	f, err := os.Open(filepath.Join(dir, "status"))
	if err != nil {
		return v, err
	}
	defer f.Close()
	fields := map[string]int{"CapEff:": int(CapsEffective), "CapInh:": int(CapsInheritable), "CapPrm:": int(CapsPermitted)}
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), "\t")
		i, want := fields[name]
		if !ok || !want {
			continue
		}
		c, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return v, fmt.Errorf("%s/status: %s %q: %w", dir, name, val, err)
		}
		v.Caps[i] = c
		found++
	}
	if err := sc.Err(); err != nil {
		return v, fmt.Errorf("reading %s/status: %w", dir, err)
	}
	if found != len(fields) {
		return v, fmt.Errorf("%s/status: %d of the capability sets", dir, found)
	}
	for i, name := range nsFiles {
		link, err := os.Readlink(filepath.Join(dir, "ns", name))
		if err != nil {
			// not on this kernel (time before 5.6), or not readable (a
			// process protected from ptrace, such as init on some
			// hosts): 0, which the kernel side does not compare
			continue
		}
		ino, err := parseNsLink(link)
		if err != nil {
			return v, fmt.Errorf("%s/ns/%s: %w", dir, name, err)
		}
		v.Ns[i] = ino
	}
	return v, nil
}

// parseNsLink reads the inode number of a /proc/<pid>/ns link,
// "<type>:[<inode>]".
func parseNsLink(link string) (uint32, error) {
	_, rest, ok := strings.Cut(link, ":[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, fmt.Errorf("namespace link %q is not <type>:[<inode>]", link)
	}
	ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("namespace link %q: %w", link, err)
	}
	return uint32(ino), nil
}

// errNoExecCreds refuses a hook whose change entries would compare with
// records nothing writes.
var errNoExecCreds = errors.New("matchCapabilityChanges and matchNamespaceChanges need the exec sensor's records of each process, which this loader was not given")
