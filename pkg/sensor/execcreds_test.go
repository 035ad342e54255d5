package sensor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/bpf"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

func TestParseNsLink(t *testing.T) {
	for link, want := range map[string]uint32{"mnt:[4026531841]": 4026531841, "pid_for_children:[1]": 1} {
		got, err := parseNsLink(link)
		if err != nil || got != want {
			t.Errorf("parseNsLink(%q) = %d, %v, want %d", link, got, err, want)
		}
	}
	for _, link := range []string{"", "mnt:4026531841", "mnt:[4026531841", "mnt:[]", "mnt:[-1]", "mnt:[4294967296]", "net:[0x10]"} {
		if got, err := parseNsLink(link); err == nil {
			t.Errorf("parseNsLink(%q) = %d, want an error", link, got)
		}
	}
}

// TestReadProcCreds reads the test's own process and checks it against
// capget(2) and the namespace links.
func TestReadProcCreds(t *testing.T) {
	v, err := ReadProcCreds("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	eff := uint64(data[1].Effective)<<32 | uint64(data[0].Effective)
	prm := uint64(data[1].Permitted)<<32 | uint64(data[0].Permitted)
	inh := uint64(data[1].Inheritable)<<32 | uint64(data[0].Inheritable)
	if v.Caps[CapsEffective] != eff || v.Caps[CapsPermitted] != prm || v.Caps[CapsInheritable] != inh {
		t.Fatalf("caps %x, capget: effective %x permitted %x inheritable %x", v.Caps, eff, prm, inh)
	}
	for i, name := range nsFiles {
		var st unix.Stat_t
		err := unix.Stat(filepath.Join("/proc/self/ns", name), &st)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if v.Ns[i] != uint32(st.Ino) || st.Ino == 0 {
			t.Errorf("namespace %s: %d, stat says %d", name, v.Ns[i], st.Ino)
		}
	}
	if _, err := ReadProcCreds(t.TempDir()); err == nil {
		t.Fatal("read the credentials of a directory that is no process")
	}
}

// TestSeedExecCreds seeds a map of the exec sensor's layout from /proc: the
// running processes get a record, and one the exec sensor already wrote
// is kept.
func TestSeedExecCreds(t *testing.T) {
	testutil.RequireRoot(t)
	spec, err := bpf.LoadProcess()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ebpf.NewMap(spec.Maps["exec_creds"])
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// a process that runs before the scan
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sleeper := uint32(cmd.Process.Pid)
	self := uint32(os.Getpid())
	mark := bpf.ProcessExecCreds{Caps: [3]uint64{1, 2, 3}}
	if err := m.Put(self, mark); err != nil {
		t.Fatal(err)
	}
	n, err := SeedExecCreds(m, "/proc")
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Fatalf("seeded %d processes", n)
	}
	var got bpf.ProcessExecCreds
	if err := m.Lookup(self, &got); err != nil || got != mark {
		t.Fatalf("the record written before the scan became %+v (%v)", got, err)
	}
	want, err := ReadProcCreds(fmt.Sprintf("/proc/%d", sleeper))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Lookup(sleeper, &got); err != nil || got != want || want.Ns[NsMnt] == 0 {
		t.Fatalf("pid %d: %+v (%v), want %+v", sleeper, got, err, want)
	}
	if _, err := SeedExecCreds(m, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("seeded from a missing /proc")
	}
}
