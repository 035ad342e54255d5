package sensor

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

var openFamily = map[uint32]Syscall{
	2: {Flags: OnExit | RetOK, Variants: []Variant{{FD: VarFDRet}}}, 257: {Flags: OnExit | RetOK, Variants: []Variant{{FD: VarFDRet}}},
}

// openArgs reads the open family's return, an fd, and the file it names.
// A function, so that no test shares another's slice.
func openArgs() []Arg {
	return []Arg{{Source: SrcRet, Kind: KindInt}, {Source: SrcRetFile, Kind: KindPath}}
}

// addHook serves spec from a dispatcher of its own, closed with the test.
func addHook(t *testing.T, spec HookSpec, ring *ebpf.Map) *DataHook {
	t.Helper()
	d, err := NewDispatcher(ring, Options{}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h, err := d.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newRing(t *testing.T) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestGenericSigkillOnOpen is the seed's enforcement policy at the sensor
// level: fd_install(fd, file) with file Equal /tmp/<x> and Sigkill.
func TestGenericSigkillOnOpen(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	dir := t.TempDir()
	target := filepath.Join(dir, "tetragon")
	other := filepath.Join(dir, "other")
	for _, f := range []string{target, other} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ring := newRing(t)
	g := addHook(t, HookSpec{
		ID:       7,
		Syscalls: openFamily,
		Args:     openArgs(),
		Selectors: []Selector{{
			Matches: []Match{{Arg: 1, Op: OpEqual, Strings: []string{target}}},
			Actions: ActPost | ActSigkill,
		}},
	}, ring)

	err := exec.Command("cat", target).Run()
	if !testutil.KilledBySIGKILL(err) {
		t.Fatalf("cat %s: %v, want killed by SIGKILL", target, err)
	}
	if out, err := exec.Command("cat", other).CombinedOutput(); err != nil || string(out) != "x" {
		t.Fatalf("cat %s: %v %q, want untouched", other, err, out)
	}
	rd, err := ringbuf.NewReader(ring)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rd.SetDeadline(time.Now().Add(2 * time.Second))
	rec, err := rd.Read()
	if err != nil {
		t.Fatalf("no record: %v", err)
	}
	if len(rec.RawSample) < 100 {
		t.Fatalf("short record %d", len(rec.RawSample))
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched != 1 || st.Signals != 1 || st.Posted != 1 || st.Calls < 2 {
		t.Fatalf("stats %+v: want exactly one match, kill and record", st)
	}
}

// TestGenericStringOperators opens a set of files under a fresh directory
// and counts, per selector, the opens the kernel matched.
func TestGenericStringOperators(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "tp_btf")
	dir := t.TempDir()
	files := []string{"a.secret", "b.txt", "secret.b", "c.secret.old", "dsecret"}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inDir := Match{Arg: 1, Op: OpPrefix, Strings: []string{dir + "/"}}
	for _, tc := range []struct {
		name  string
		match Match
		want  uint64
	}{
		{"Postfix", Match{Arg: 1, Op: OpPostfix, Strings: []string{".secret", ".txt"}}, 2},
		{"NotPostfix", Match{Arg: 1, Op: OpNotPostfix, Strings: []string{"secret"}}, 3},
		{"Equal", Match{Arg: 1, Op: OpEqual, Strings: []string{filepath.Join(dir, "b.txt")}}, 1},
		{"NotEqual", Match{Arg: 1, Op: OpNotEqual, Strings: []string{filepath.Join(dir, "b.txt")}}, 4},
		{"Prefix", Match{Arg: 1, Op: OpPrefix, Strings: []string{filepath.Join(dir, "secret")}}, 1},
		{"NotPrefix", Match{Arg: 1, Op: OpNotPrefix, Strings: []string{filepath.Join(dir, "secret")}}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := addHook(t, HookSpec{
				ID:        1,
				Syscalls:  openFamily,
				Args:      openArgs(),
				Selectors: []Selector{{Matches: []Match{inDir, tc.match}, Actions: 0}},
			}, newRing(t))
			args := []string{}
			for _, f := range files {
				args = append(args, filepath.Join(dir, f))
			}
			if out, err := exec.Command("cat", args...).CombinedOutput(); err != nil {
				t.Fatalf("cat: %v %s", err, out)
			}
			st, err := g.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Matched != tc.want {
				t.Fatalf("%d of %v matched, want %d (stats %+v)", st.Matched, files, tc.want, st)
			}
		})
	}
}
