package kube

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/cgroup"
	"github.com/tetragon-lite/tetragon/pkg/compiler"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// Cgroups resolves a policy's scope into the cgroups of the matching
// containers of the node's pods: the cgroup v2 ids (the inode numbers of
// their directories) of every cgroup whose path names one of those
// containers, as bpf_get_current_cgroup_id returns them for its
// processes. A container whose id the pod's status does not name yet has
// none: the policy reaches it once the kubelet reports it.
func (a *Agent) Cgroups(s compiler.Scope) ([]uint64, error) {
	want := map[string]bool{}
	for _, c := range a.pods.Current() {
		if Selects(s, c) {
			want[c.ID] = true
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	byID, err := a.cgroups.ids()
	if err != nil {
		return nil, err
	}
	var out []uint64
	for id := range want {
		out = append(out, byID[id]...)
	}
	slices.Sort(out)
	return out, nil
}

// Selects reports whether a scope names a container: its namespace, its
// pod's labels (podSelector) and its name (containerSelector, whose one
// key is "name").
func Selects(s compiler.Scope, c Container) bool {
	if s.Namespace != "" && s.Namespace != c.Namespace {
		return false
	}
	return labelsMatch(s.Pods, c.Labels) && labelsMatch(s.Containers, map[string]string{"name": c.Name})
}

// labelsMatch is a Kubernetes label selector: every matchLabels pair and
// every matchExpressions requirement holds; a nil selector selects all.
func labelsMatch(sel *tp.LabelSelector, labels map[string]string) bool {
	if sel == nil {
		return true
	}
	for k, v := range sel.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range sel.MatchExpressions {
		v, ok := labels[r.Key]
		var hold bool
		switch r.Operator {
		case "In":
			hold = ok && slices.Contains(r.Values, v)
		case "NotIn":
			hold = !ok || !slices.Contains(r.Values, v)
		case "Exists":
			hold = ok
		case "DoesNotExist":
			hold = !ok
		}
		if !hold {
			return false
		}
	}
	return true
}

// cgroupTree is the host's cgroup v2 hierarchy: where the agent's mount
// table has it (the host's /sys/fs/cgroup/unified, say), else mounted by
// the agent itself (a pod without /sys/fs/cgroup; the pod shares the
// host's cgroup namespace on a cgroup v1 host, where the runtime makes
// none). pid 1's root is no way in: init may refuse to be traced.
type cgroupTree struct {
	mu  sync.Mutex
	dir string
}

// root returns the hierarchy's directory, mounting it the first time when
// no mount of it is in sight.
func (t *cgroupTree) root() (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dir != "" {
		return t.dir, nil
	}
	dir, err := cgroup2Mount("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tetragon-cgroup2-"); err != nil {
			return "", fmt.Errorf("mounting the cgroup v2 hierarchy: %w", err)
		}
		if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			os.Remove(dir)
			return "", fmt.Errorf("no cgroup v2 hierarchy is mounted, and mounting one at %s failed (a policy limited to pods cannot tell their processes apart without it): %w", dir, err)
		}
	}
	t.dir = dir
	return dir, nil
}

// cgroup2Mount returns where the mount table at path has the whole cgroup
// v2 hierarchy (its root, not a subtree), or "".
func cgroup2Mount(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("finding the cgroup v2 hierarchy: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") && fields[3] == "/" {
			return unescapeMount(fields[4]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return "", nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + c - '0'
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ids walks the hierarchy: container id -> the ids of the cgroups whose
// path names it (its own, and any it made below it).
func (t *cgroupTree) ids() (map[string][]uint64, error) {
	root, err := t.root()
	if err != nil {
		return nil, err
	}
	out := map[string][]uint64{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			// a cgroup removed during the walk
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		id := cgroup.ContainerID(strings.TrimPrefix(path, root))
		if id == "" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			out[id] = append(out[id], st.Ino)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the cgroup v2 hierarchy at %s: %w", root, err)
	}
	return out, nil
}
