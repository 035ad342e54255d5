// Package process keeps the agent's view of the processes on the host: a
// cache fed by exec, fork and exit records (and /proc at startup) that turns
// records into Tetragon-shaped events with their process and parent.
package process

import (
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/cgroup"
	"github.com/tetragon-lite/tetragon/pkg/escape"
	"github.com/tetragon-lite/tetragon/pkg/eventbus"
	"github.com/tetragon-lite/tetragon/pkg/eventwire"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

// entry is one process incarnation. proc is shared by every event about the
// process, so it is never modified after it is stored.
type entry struct {
	proc   *api.Process
	parent *entry
	// refs counts the process itself while it runs plus its children in
	// the cache: an exited parent stays while its children may still need it.
	refs     int
	exitedAt time.Time
	freed    bool
	// wire is proc's protobuf encoding, marshalled once for every event
	// about the process (wired: done); a fork that never execs and has no
	// event needs none
	wire  []byte
	wired bool
}

// Options configure a Cache.
type Options struct {
	Node  string
	Clock Clock
	// HostNs are the host's namespace inodes, to mark is_host.
	HostNs [observer.NsCount]uint32
	// Grace is how long an exited process is kept once nothing refers to it.
	Grace time.Duration
	// Max bounds the number of cached processes; past it the oldest exited
	// ones are evicted first.
	Max int
	// ProcRoot, when set, is read for a parent the cache does not know
	// (one that started while the agent was starting).
	ProcRoot string
	// Containers, when set, resolves a container id to its metadata and,
	// in Kubernetes, its pod (nil outside one). It may block briefly (a
	// bounded Docker API call for a new container, a wait for the pod
	// watch), so it is called without the cache's lock held.
	Containers func(id string) (*api.Container, *api.Pod)
}

// Cache is safe for concurrent use.
type Cache struct {
	opts Options

	mu        sync.Mutex
	byPid     map[uint32]*entry
	dead      []*entry // exited, waiting for refs to drop and grace to pass
	evictions uint64
	misses    uint64
}

// NewCache returns an empty cache.
func NewCache(opts Options) *Cache {
	if opts.Grace <= 0 {
		opts.Grace = time.Second
	}
	if opts.Max <= 0 {
		opts.Max = 65536
	}
	return &Cache{opts: opts, byPid: make(map[uint32]*entry)}
}

// Stats are the cache's counters.
type Stats struct {
	Size      int
	Evictions uint64
	// Misses counts records whose process or parent was unknown.
	Misses uint64
}

// Stats reads the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Size: len(c.byPid) + len(c.dead), Evictions: c.evictions, Misses: c.misses}
}

// Exec records an exec and returns its event.
func (c *Cache) Exec(e *observer.Exec) *eventbus.Event {
	id := cgroup.ContainerID(e.CgroupName)
	ctr, pod := c.container(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	parent := c.lookupParent(e.Ppid)
	p := c.execProcess(e, parent)
	p.Docker, p.Container, p.Pod = id, ctr, pod
	old := c.byPid[e.Pid]
	n := c.store(e.Pid, p, parent)
	if old != nil {
		// exec replaced the old image of this pid: it is gone for good
		c.retire(old, c.opts.Clock.Wall(e.Ktime))
	}
	return eventbus.NewEvent(&api.GetEventsResponse{
		Event:    &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{Process: n.proc, Parent: procOf(parent)}},
		NodeName: c.opts.Node,
		Time:     c.opts.Clock.Timestamp(e.Ktime),
	}, c.wireOf(n), c.wireOf(parent))
}

// Fork records a new process that runs its parent's image until it execs.
// Forks produce no event, as in Tetragon.
func (c *Cache) Fork(f *observer.Fork) {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent := c.lookupParent(f.Ppid)
	var p *api.Process
	if parent != nil {
		p = proto.Clone(parent.proc).(*api.Process)
		p.ParentExecId = parent.proc.ExecId
		p.Flags = "clone"
	} else {
		p = &api.Process{Flags: "clone"}
	}
	p.ExecId = ExecID(c.opts.Node, f.Ktime, f.Pid)
	p.Pid = u32(f.Pid)
	p.Tid = u32(f.Pid)
	p.StartTime = c.opts.Clock.Timestamp(f.Ktime)
	if old := c.byPid[f.Pid]; old != nil {
		c.retire(old, c.opts.Clock.Wall(f.Ktime))
	}
	c.store(f.Pid, p, parent)
}

// Exit records a process exit and returns its event.
func (c *Cache) Exit(x *observer.Exit) *eventbus.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := &api.ProcessExit{Time: c.opts.Clock.Timestamp(x.Ktime)}
	if sig := x.Code & 0x7f; sig != 0 {
		ev.Signal = unix.SignalName(unix.Signal(sig))
	} else {
		ev.Status = (x.Code >> 8) & 0xff
	}
	var proc, parent []byte
	if n := c.byPid[x.Pid]; n != nil {
		ev.Process, ev.Parent = n.proc, procOf(n.parent)
		proc, parent = c.wireOf(n), c.wireOf(n.parent)
		delete(c.byPid, x.Pid)
		c.retire(n, c.opts.Clock.Wall(x.Ktime))
	} else {
		c.misses++
		ev.Process = &api.Process{Pid: u32(x.Pid), Tid: u32(x.Tid), Flags: "miss"}
	}
	return eventbus.NewEvent(&api.GetEventsResponse{
		Event:    &api.GetEventsResponse_ProcessExit{ProcessExit: ev},
		NodeName: c.opts.Node,
		Time:     ev.Time,
	}, proc, parent)
}

// Timestamp converts a record's boot-clock time to a timestamp.
func (c *Cache) Timestamp(ktime uint64) *timestamppb.Timestamp { return c.opts.Clock.Timestamp(ktime) }

// GetWithParent returns the running process with this pid and its parent.
func (c *Cache) GetWithParent(pid uint32) (*api.Process, *api.Process, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.byPid[pid]
	if n == nil {
		c.misses++
		return nil, nil, false
	}
	return n.proc, procOf(n.parent), true
}

// Wire holds the protobuf encoding of a process and of its parent, for
// eventbus.NewEvent; nil where there is none.
type Wire struct{ Process, Parent []byte }

// Lookup is GetWithParent with the wire bytes of both.
func (c *Cache) Lookup(pid uint32) (proc, parent *api.Process, wire Wire, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.byPid[pid]
	if n == nil {
		c.misses++
		return nil, nil, Wire{}, false
	}
	return n.proc, procOf(n.parent), Wire{c.wireOf(n), c.wireOf(n.parent)}, true
}

// wireOf marshals n's process on its first event; the caller holds mu.
// A process that cannot be marshalled gets nil: the event is then
// marshalled whole, and reports the error where it is sent.
func (c *Cache) wireOf(n *entry) []byte {
	if n == nil {
		return nil
	}
	if !n.wired {
		n.wire, _ = eventwire.Process(n.proc)
		n.wired = true
	}
	return n.wire
}

// Get returns the running process with this pid.
func (c *Cache) Get(pid uint32) (*api.Process, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.byPid[pid]
	if n == nil {
		return nil, false
	}
	return n.proc, true
}

// Collect frees exited processes that nothing refers to any more and whose
// grace time has passed, then enforces the size bound.
func (c *Cache) Collect(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.dead {
		c.free(n, now)
	}
	kept := c.dead[:0]
	for _, n := range c.dead {
		if !n.freed {
			kept = append(kept, n)
		}
	}
	clear(c.dead[len(kept):])
	c.dead = kept
	for len(c.byPid)+len(c.dead) > c.opts.Max && len(c.dead) > 0 {
		c.dead[0].freed = true
		c.release(c.dead[0])
		c.dead = c.dead[1:]
		c.evictions++
	}
}

// free releases n if it is collectable, then its ancestors that this made
// collectable; the caller holds mu.
func (c *Cache) free(n *entry, now time.Time) {
	for n != nil && !n.freed && !n.exitedAt.IsZero() && n.refs <= 0 && now.Sub(n.exitedAt) >= c.opts.Grace {
		n.freed = true
		parent := n.parent
		c.release(n)
		n = parent
	}
}

func (c *Cache) container(id string) (*api.Container, *api.Pod) {
	if id == "" || c.opts.Containers == nil {
		return nil, nil
	}
	return c.opts.Containers(id)
}

// lookupParent finds a parent, falling back to procfs for one that started
// before the agent could see it; the caller holds mu.
func (c *Cache) lookupParent(ppid uint32) *entry {
	if n := c.byPid[ppid]; n != nil || ppid == 0 {
		return n
	}
	if c.opts.ProcRoot != "" {
		if p, err := c.readProc(c.opts.ProcRoot, ppid); err == nil {
			return c.store(ppid, p.proc, c.byPid[p.ppid])
		}
	}
	c.misses++
	return nil
}

// store inserts a running process; the caller holds mu.
func (c *Cache) store(pid uint32, p *api.Process, parent *entry) *entry {
	n := &entry{proc: p, parent: parent, refs: 1}
	if parent != nil {
		parent.refs++
	}
	c.byPid[pid] = n
	return n
}

// retire moves a process that exited (or exec'd away) to the dead list.
func (c *Cache) retire(n *entry, at time.Time) {
	if !n.exitedAt.IsZero() {
		return
	}
	n.refs--
	n.exitedAt = at
	c.dead = append(c.dead, n)
}

// release drops a dead entry's hold on its parent.
func (c *Cache) release(n *entry) {
	if n.parent != nil {
		n.parent.refs--
		n.parent = nil
	}
}

func procOf(n *entry) *api.Process {
	if n == nil {
		return nil
	}
	return n.proc
}

func (c *Cache) execProcess(e *observer.Exec, parent *entry) *api.Process {
	flags := []string{"execve"}
	binary := escape.String(e.Binary)
	if e.Flags&observer.ExecDeletedBinary != 0 {
		binary += " (deleted)"
	}
	if e.Flags&observer.ExecTruncBinary != 0 {
		flags = append(flags, "truncFilename")
	}
	if e.Flags&observer.ExecTruncArgs != 0 {
		flags = append(flags, "truncArgs")
	}
	if e.Flags&observer.ExecErrArgs != 0 {
		flags = append(flags, "errorArgs")
	}
	if e.Cwd == "/" {
		flags = append(flags, "rootcwd")
	}
	p := &api.Process{
		ExecId:    ExecID(c.opts.Node, e.Ktime, e.Pid),
		Pid:       u32(e.Pid),
		Tid:       u32(e.Tid),
		Uid:       u32(e.UID),
		Auid:      u32(e.AUID),
		Cwd:       escape.String(e.Cwd),
		Binary:    binary,
		Arguments: Arguments(e.Args, e.Flags&observer.ExecTruncArgs != 0),
		Flags:     strings.Join(flags, " "),
		StartTime: c.opts.Clock.Timestamp(e.Ktime),
		CgroupId:  e.CgroupID,
		Cap: &api.Capabilities{
			Permitted:   CapsList(e.CapPermitted),
			Effective:   CapsList(e.CapEffective),
			Inheritable: CapsList(e.CapInh),
		},
		Ns: namespaces(e.Ns, c.opts.HostNs),
		ProcessCredentials: &api.ProcessCredentials{
			Uid: u32(e.UID), Gid: u32(e.GID), Euid: u32(e.EUID), Egid: u32(e.EGID),
			Suid: u32(e.SUID), Sgid: u32(e.SGID), Fsuid: u32(e.FSUID), Fsgid: u32(e.FSGID),
		},
	}
	if parent != nil {
		p.ParentExecId = parent.proc.ExecId
	}
	return p
}
