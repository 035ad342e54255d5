package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/pkg/hooks"
)

// bpfStatsSysctl is the switch for the kernel's per-program run counters;
// off by default because the counting costs every program run.
const bpfStatsSysctl = "/proc/sys/kernel/bpf_stats_enabled"

// BPFStatsEnabled reports whether kernel.bpf_stats_enabled is 1. (A
// BPF_ENABLE_STATS file descriptor held by some process also turns the
// counters on without showing here; such counts are not reported.)
func BPFStatsEnabled() bool {
	b, err := os.ReadFile(bpfStatsSysctl)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// program is one of the agent's loaded BPF programs with its counters.
type program struct {
	labels  programLabels
	runs    uint64
	runtime time.Duration
}

// programLabels say what a program serves: the base sensor, or a policy's
// hook.
type programLabels struct {
	sensor, policy, attach, name string
}

// readPrograms returns the run counters of the BPF programs this process
// holds. The programs are found from the process's own file descriptors,
// which needs nothing from the packages that loaded them. What a program
// serves is known by the counters map it uses: the base sensor's and the
// syscall dispatcher's are found from their pins (pinRoot/base and
// pinRoot/policies/%syscalls), a bpf/hook.c object's from the policies'
// status (HookStatus.Objects). Other programs are known by their name only.
func readPrograms(pinRoot string, policies []hooks.PolicyStatus) ([]program, error) {
	ids, err := ownPrograms()
	if err != nil {
		return nil, err
	}
	owners := statsMapOwners(pinRoot, policies)
	var out []program
	for _, id := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded since the scan
		}
		pr, ok := describe(p, owners)
		p.Close()
		if ok {
			out = append(out, pr)
		}
	}
	return out, nil
}

func describe(p *ebpf.Program, owners map[ebpf.MapID]programLabels) (program, bool) {
	info, err := p.Info()
	if err != nil {
		return program{}, false
	}
	st, err := p.Stats()
	if err != nil {
		return program{}, false
	}
	pr := program{labels: programLabels{name: info.Name}, runs: st.RunCount, runtime: st.Runtime}
	maps, _ := info.MapIDs()
	for _, m := range maps {
		if l, ok := owners[m]; ok {
			l.name = info.Name
			pr.labels = l
			break
		}
	}
	return pr, true
}

// ownPrograms lists the ids of the BPF programs this process has file
// descriptors of, each once.
func ownPrograms() ([]ebpf.ProgramID, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("listing file descriptors: %w", err)
	}
	var ids []ebpf.ProgramID
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != "anon_inode:bpf-prog" {
			continue
		}
		id, ok := fdinfoProgID(filepath.Join("/proc/self/fdinfo", e.Name()))
		if ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// fdinfoProgID reads the "prog_id:" line of a program fd's fdinfo.
func fdinfoProgID(path string) (ebpf.ProgramID, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "prog_id:")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		return ebpf.ProgramID(id), err == nil
	}
	return 0, false
}

// statsMapOwners maps the id of each "stats" map to the sensor or policy
// hook it belongs to. An object several policies' hooks share has no
// policy label: it is the attach point's, as the dispatcher is every
// syscall-mapped hook's. Pinned maps only are opened, never links: opening a
// pinned link would hold it, and a link held elsewhere is not detached when
// the agent unpins and closes it.
func statsMapOwners(pinRoot string, policies []hooks.PolicyStatus) map[ebpf.MapID]programLabels {
	out := map[ebpf.MapID]programLabels{}
	for _, ps := range policies {
		for _, h := range ps.Hooks {
			for _, id := range h.Objects {
				l, seen := out[id]
				if seen && l.policy != ps.Name {
					l.policy = ""
				} else if !seen {
					l = programLabels{sensor: h.Mechanism, policy: ps.Name, attach: h.Call}
				}
				out[id] = l
			}
		}
	}
	if pinRoot == "" {
		return out
	}
	if id, ok := pinnedMapID(filepath.Join(pinRoot, "base", "stats")); ok {
		out[id] = programLabels{sensor: "base"}
	}
	// the syscall dispatcher's programs serve every syscall-mapped hook:
	// the attached ones and the filters use the chains, the runs the
	// counters (bpf/dispatch.c)
	for _, m := range []string{"stats", "sys_enter_chain", "sys_exit_chain"} {
		if id, ok := pinnedMapID(filepath.Join(pinRoot, "policies", hooks.DispatcherPin, m)); ok {
			out[id] = programLabels{sensor: "syscall-dispatcher"}
		}
	}
	return out
}

func pinnedMapID(path string) (ebpf.MapID, bool) {
	m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return 0, false // not pinned (any more): the object has no labels
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		return 0, false
	}
	return info.ID()
}
