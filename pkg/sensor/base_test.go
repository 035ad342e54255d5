package sensor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestAdoptBase: a base sensor pinned by one run is adopted by the next
// with its programs, ring buffer and exec records, and the next run's tag.
// The ring buffer holds, in order, what happened while nobody read it,
// and then the records of both runs' hooks, each with its run's tag.
// Nothing else is adopted.
func TestAdoptBase(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	dir, err := os.MkdirTemp(kernelfs.BPF().Path, "base-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemovePinned(dir) })
	watched := filepath.Join(t.TempDir(), "watched")
	if err := os.WriteFile(watched, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := AdoptBase(dir); !errors.Is(err, ErrNotAdopted) {
		t.Fatalf("adopting from an empty directory: %v, want ErrNotAdopted", err)
	}
	first, err := LoadBase(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if first.Adopted() || first.RunTag() != 1 {
		t.Fatalf("a loaded sensor: adopted %v, run %d; want false and 1", first.Adopted(), first.RunTag())
	}
	if err := first.Pin(dir); err != nil {
		t.Fatal(err)
	}
	// the previous run's hook stays attached through the handover
	hook := func(b *Base) *DataHook {
		t.Helper()
		d, err := NewDispatcher(b.Events(), Options{RunTag: b.RunTag(), ExecCreds: b.ExecCreds()}, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		h, err := d.Add(HookSpec{ID: 7, Syscalls: openFamily, Args: openArgs(), Selectors: []Selector{{
			Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{watched}}}, Actions: ActPost,
		}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	hook(first)
	if err := first.StopReading(); err != nil {
		t.Fatal(err)
	}
	progs := linkedProgs(t, first)
	first.Close()

	// nobody reads: a process runs
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.ProcessState.Pid())

	links := openLinks(t)
	second, err := AdoptBase(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got, want := openLinks(t), links+len(second.links); got != want {
		t.Errorf("adopting opened %d link handles for the sensor's %d links", got-links, len(second.links))
	}
	if !second.Adopted() || second.RunTag() != 2 {
		t.Fatalf("an adopted sensor: adopted %v, run %d; want true and 2", second.Adopted(), second.RunTag())
	}
	if got := linkedProgs(t, second); !slices.Equal(got, progs) {
		t.Fatalf("adopted programs %v, want the pinned %v", got, progs)
	}
	hook(second)
	fd, err := syscall.Open(watched, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)

	rd, err := ringbuf.NewReader(second.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var execd bool
	var runs []uint16
	for _, v := range drainDecoded(t, rd) {
		switch rec := v.(type) {
		case *observer.Exec:
			execd = execd || rec.Pid == pid
		case *observer.HookRecord:
			if rec.HookID == 7 {
				runs = append(runs, rec.Run)
			}
		}
	}
	if !execd {
		t.Errorf("the adopted ring buffer holds no exec of pid %d, run while nobody read it", pid)
	}
	slices.Sort(runs)
	if !slices.Equal(runs, []uint16{1, 2}) {
		t.Errorf("records of the watched open with run tags %v, want one of each run's hook: [1 2]", runs)
	}
	if lost, err := second.LostUnread(); err != nil || lost != 0 {
		t.Errorf("lost while unread: %d, %v; want 0", lost, err)
	}
	// the adopting run counts from its start: the exec before it is not
	// its own (other processes may exec meanwhile: raw is read last)
	st, err := second.Stats()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := readStats(second.objs.Stats)
	if err != nil {
		t.Fatal(err)
	}
	if st.Execs >= raw.Execs {
		t.Errorf("the adopting run counts %d execs of the sensor's %d: the one before the adoption is counted as its own", st.Execs, raw.Execs)
	}
	// a third run: the tags go on
	third, err := AdoptBase(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if third.RunTag() != 3 {
		t.Errorf("the next adoption's run %d, want 3", third.RunTag())
	}
}

// linkedProgs are the programs of the sensor's links.
func linkedProgs(t *testing.T, b *Base) []ebpf.ProgramID {
	t.Helper()
	var ids []ebpf.ProgramID
	for _, l := range b.links {
		info, err := l.Info()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.Program)
	}
	return ids
}
