package process

import (
	"os"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/observer"
)

func TestArguments(t *testing.T) {
	cases := []struct {
		argv      string
		truncated bool
		want      string
	}{
		{"cat\x00/etc/shadow\x00", false, "/etc/shadow"},
		{"bash\x00-c\x00cat /etc/shadow\x00", false, `-c "cat /etc/shadow"`},
		{"true\x00\x00x\x00", false, `"" x`},
		{"true\x00say \"hi\" now\x00", false, `"say \"hi\" now"`},
		{"true\x00caf\xe9\x00", false, `caf\xe9`},
		{"printf\x00\\x41\\\xff\x00", false, `\\x41\\\xff`},
		{"true\x00", false, ""},
		{"", false, ""},
		{"echo\x00abc\x00de", true, "abc de"},
	}
	for _, c := range cases {
		if got := Arguments([]byte(c.argv), c.truncated); got != c.want {
			t.Errorf("Arguments(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
}

func newTestCache() *Cache {
	return NewCache(Options{Node: "node", Clock: NewClock(time.Unix(1000, 0), 0), Grace: time.Millisecond, Max: 100})
}

func TestForkExecExitLifecycle(t *testing.T) {
	c := newTestCache()
	c.Exec(&observer.Exec{Ktime: 1, Pid: 10, Ppid: 0, Binary: "/bin/sh", Args: []byte("sh\x00")})
	c.Fork(&observer.Fork{Ktime: 2, Pid: 11, Ppid: 10})
	ev := c.Exec(&observer.Exec{Ktime: 3, Pid: 11, Ppid: 10, Binary: "/bin/cat", Args: []byte("cat\x00x\x00")})
	e := ev.GetProcessExec()
	if e.GetParent().GetBinary() != "/bin/sh" || e.GetProcess().GetParentExecId() != e.GetParent().GetExecId() {
		t.Fatalf("cat's parent: %v", e.GetParent())
	}
	if e.GetProcess().GetExecId() != ExecID("node", 3, 11) {
		t.Fatalf("exec id %q", e.GetProcess().GetExecId())
	}
	if got := ev.GetTime().AsTime(); !got.Equal(time.Unix(1000, 3)) {
		t.Fatalf("event time %v", got)
	}
	x := c.Exit(&observer.Exit{Ktime: 4, Pid: 11, Code: 9}).GetProcessExit()
	if x.GetSignal() != "SIGKILL" || x.GetProcess().GetBinary() != "/bin/cat" || x.GetParent().GetBinary() != "/bin/sh" {
		t.Fatalf("exit: %v", x)
	}
	x = c.Exit(&observer.Exit{Ktime: 5, Pid: 10, Code: 2 << 8}).GetProcessExit()
	if x.GetStatus() != 2 || x.GetSignal() != "" {
		t.Fatalf("exit: %v", x)
	}
	c.Collect(time.Now())
	if st := c.Stats(); st.Size != 0 || st.Misses != 0 {
		t.Fatalf("after everything exited: %+v", st)
	}
}

func TestExitedParentKeptForChildren(t *testing.T) {
	c := newTestCache()
	c.Exec(&observer.Exec{Ktime: 1, Pid: 10, Binary: "/bin/sh"})
	c.Exec(&observer.Exec{Ktime: 2, Pid: 11, Ppid: 10, Binary: "/bin/sleep"})
	c.Exit(&observer.Exit{Ktime: 3, Pid: 10})
	c.Collect(time.Now())
	x := c.Exit(&observer.Exit{Ktime: 4, Pid: 11}).GetProcessExit()
	if x.GetParent().GetBinary() != "/bin/sh" {
		t.Fatalf("orphan's exit lost its parent: %v", x.GetParent())
	}
	c.Collect(time.Now())
	if st := c.Stats(); st.Size != 0 {
		t.Fatalf("cache size %d after both exited", st.Size)
	}
}

func TestUnknownProcessExitIsCounted(t *testing.T) {
	c := newTestCache()
	x := c.Exit(&observer.Exit{Ktime: 1, Pid: 99}).GetProcessExit()
	if x.GetProcess().GetPid().GetValue() != 99 || x.GetProcess().GetFlags() != "miss" {
		t.Fatalf("exit of unknown pid: %v", x.GetProcess())
	}
	if c.Stats().Misses != 1 {
		t.Fatalf("misses %d", c.Stats().Misses)
	}
}

func TestCacheBound(t *testing.T) {
	c := NewCache(Options{Node: "n", Clock: NewClock(time.Now(), 0), Grace: time.Hour, Max: 10})
	for pid := uint32(1); pid <= 30; pid++ {
		c.Exec(&observer.Exec{Ktime: uint64(pid), Pid: pid, Binary: "/bin/true"})
		c.Exit(&observer.Exit{Ktime: uint64(pid), Pid: pid})
	}
	c.Collect(time.Now())
	if st := c.Stats(); st.Size > 10 || st.Evictions != 20 {
		t.Fatalf("bounded cache: %+v", st)
	}
}

func TestLoadProcLinksParents(t *testing.T) {
	c := NewCache(Options{Node: "n", Clock: NewClock(time.Now(), 0)})
	n, err := c.LoadProc("/proc")
	if err != nil || n == 0 {
		t.Fatalf("LoadProc: %d, %v", n, err)
	}
	self, ok := c.Get(uint32(os.Getpid()))
	if !ok {
		t.Fatal("the test process is not in the cache")
	}
	if self.GetParentExecId() == "" || self.GetBinary() == "" || self.GetFlags() != "procFS" && self.GetFlags() != "procFS rootcwd" {
		t.Fatalf("self from procfs: %v", self)
	}
	parent, ok := c.Get(uint32(os.Getppid()))
	if !ok || parent.GetExecId() != self.GetParentExecId() {
		t.Fatalf("parent link: %v vs %q", parent, self.GetParentExecId())
	}
}
