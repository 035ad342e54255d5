package process

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/cgroup"
	"github.com/tetragon-lite/tetragon/pkg/escape"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture the agent supports.
const clockTicks = 100

var nsNames = [observer.NsCount]string{
	observer.NsUts: "uts", observer.NsIpc: "ipc", observer.NsMnt: "mnt",
	observer.NsPid: "pid", observer.NsPidForChildren: "pid_for_children",
	observer.NsNet: "net", observer.NsTime: "time", observer.NsTimeForChildren: "time_for_children",
	observer.NsCgroup: "cgroup", observer.NsUser: "user",
}

// ReadNamespaces reads the namespace inodes of a process from procfs.
func ReadNamespaces(procDir string) [observer.NsCount]uint32 {
	var ns [observer.NsCount]uint32
	for i, name := range nsNames {
		link, err := os.Readlink(filepath.Join(procDir, "ns", name))
		if err != nil {
			continue
		}
		// "net:[4026531840]"
		if l, r := strings.IndexByte(link, '['), strings.IndexByte(link, ']'); l >= 0 && r > l {
			v, _ := strconv.ParseUint(link[l+1:r], 10, 32)
			ns[i] = uint32(v)
		}
	}
	return ns
}

// procProcess is what /proc says about one process.
type procProcess struct {
	pid, ppid uint32
	ktime     uint64
	proc      *api.Process
}

// readProc reads one /proc/PID directory; it fails when the process went
// away meanwhile, which the caller tolerates.
func (c *Cache) readProc(root string, pid uint32) (procProcess, error) {
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return procProcess{}, err
	}
	// comm may hold spaces and parentheses: fields start after the last ')'
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procProcess{}, fmt.Errorf("parsing %s/stat: no comm", dir)
	}
	comm := ""
	if j := bytes.IndexByte(stat, '('); j >= 0 && j < i {
		comm = string(stat[j+1 : i])
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is state (field 3); ppid is field 4, starttime field 22
	if len(fields) < 20 {
		return procProcess{}, fmt.Errorf("parsing %s/stat: %d fields", dir, len(fields))
	}
	ppid, _ := strconv.ParseUint(fields[1], 10, 32)
	start, _ := strconv.ParseUint(fields[19], 10, 64)
	ktime := start * (1e9 / clockTicks)

	binary, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		// kernel threads have no executable
		binary = "[" + comm + "]"
	}
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	cwd, _ := os.Readlink(filepath.Join(dir, "cwd"))
	status := readStatus(filepath.Join(dir, "status"))
	auid := uint32(0xffffffff)
	if b, err := os.ReadFile(filepath.Join(dir, "loginuid")); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
			auid = uint32(v)
		}
	}
	var containerID string
	if f, err := os.Open(filepath.Join(dir, "cgroup")); err == nil {
		if path, err := cgroup.ParseProcCgroup(f); err == nil {
			containerID = cgroup.ContainerID(path)
		}
		f.Close()
	}
	flags := "procFS"
	if cwd == "/" {
		flags += " rootcwd"
	}
	p := &api.Process{
		ExecId:    ExecID(c.opts.Node, ktime, pid),
		Pid:       u32(pid),
		Tid:       u32(pid),
		Uid:       u32(status.ids["Uid"][0]),
		Auid:      u32(auid),
		Cwd:       escape.String(cwd),
		Binary:    escape.String(binary),
		Arguments: Arguments(cmdline, false),
		Flags:     flags,
		StartTime: c.opts.Clock.Timestamp(ktime),
		Docker:    containerID,
		Cap: &api.Capabilities{
			Permitted:   CapsList(status.caps["CapPrm"]),
			Effective:   CapsList(status.caps["CapEff"]),
			Inheritable: CapsList(status.caps["CapInh"]),
		},
		Ns: namespaces(ReadNamespaces(dir), c.opts.HostNs),
		ProcessCredentials: &api.ProcessCredentials{
			Uid: u32(status.ids["Uid"][0]), Euid: u32(status.ids["Uid"][1]),
			Suid: u32(status.ids["Uid"][2]), Fsuid: u32(status.ids["Uid"][3]),
			Gid: u32(status.ids["Gid"][0]), Egid: u32(status.ids["Gid"][1]),
			Sgid: u32(status.ids["Gid"][2]), Fsgid: u32(status.ids["Gid"][3]),
		},
	}
	p.Container, p.Pod = c.container(containerID)
	return procProcess{pid: pid, ppid: uint32(ppid), ktime: ktime, proc: p}, nil
}

type procStatus struct {
	ids  map[string][4]uint32
	caps map[string]uint64
}

func readStatus(path string) procStatus {
	st := procStatus{ids: map[string][4]uint32{}, caps: map[string]uint64{}}
	f, err := os.Open(path)
	if err != nil {
		return st
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Uid", "Gid":
			var ids [4]uint32
			for i, f := range strings.Fields(val) {
				if i < 4 {
					v, _ := strconv.ParseUint(f, 10, 32)
					ids[i] = uint32(v)
				}
			}
			st.ids[key] = ids
		case "CapInh", "CapPrm", "CapEff":
			v, _ := strconv.ParseUint(val, 16, 64)
			st.caps[key] = v
		}
	}
	return st
}

// LoadProc fills the cache with the processes already running, read from
// procRoot (normally /proc), linking each to its parent. Processes the
// cache already knows from records (which are newer) are left alone. It
// returns how many processes it added.
func (c *Cache) LoadProc(procRoot string) (int, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", procRoot, err)
	}
	var procs []procProcess
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		p, err := c.readProc(procRoot, uint32(pid))
		if err != nil {
			continue // exited while we looked
		}
		procs = append(procs, p)
	}
	// parents start before their children: insert oldest first so each
	// parent is in place when its children arrive
	sort.Slice(procs, func(i, j int) bool {
		if procs[i].ktime != procs[j].ktime {
			return procs[i].ktime < procs[j].ktime
		}
		return procs[i].pid < procs[j].pid
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	added := 0
	for _, p := range procs {
		if _, known := c.byPid[p.pid]; known {
			continue
		}
		parent := c.byPid[p.ppid]
		if parent != nil {
			p.proc.ParentExecId = parent.proc.ExecId
		}
		c.store(p.pid, p.proc, parent)
		added++
	}
	return added, nil
}
