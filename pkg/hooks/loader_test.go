package hooks

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

const loaderPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "%[3]s"
spec:
  loader: true
`

// noLoaderPolicy hooks something else and leaves loader unset.
const noLoaderPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "no-loader"
spec:
  loader: false
  kprobes:
  - call: "sys_getcwd"
    syscall: true
`

// TestLoaderRefusal: where the kernel cannot attach kprobes, loader: true
// is refused at its place in the file, naming the probe feature, and
// nothing stays loaded. A manager told the kernel lacks kprobes shows this
// on every kernel; on the host, whose probe finds none, the real verdict
// does too.
func TestLoaderRefusal(t *testing.T) {
	probed := testutil.Kernel(t).Map()
	cases := map[string]map[string]bool{"no kprobe feature": {kernelfeatures.Tracepoint: true, kernelfeatures.Uprobe: true}}
	if !probed[kernelfeatures.Kprobe] {
		cases["this kernel"] = probed
	}
	for name, features := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, compiler.MechKprobe, features)
			_, err := h.tryLoad(t, loaderPolicy, "", "loader")
			want := `policy "loader": policy.yaml:6:11: spec.loader: loader needs a kprobe on perf_event_mmap_output (where the kernel hands a new mapping's path and build id to perf), and this kernel cannot attach kprobes (probe feature kprobe)`
			if err == nil || err.Error() != want {
				t.Fatalf("error %v\nwant      %s", err, want)
			}
			if h.m.LoaderAttached() || len(h.m.Status()) != 0 {
				t.Fatalf("refused policy left something loaded: attached %v, %+v", h.m.LoaderAttached(), h.m.Status())
			}
		})
	}
}

// TestLoaderEvents runs a program that maps files executable, with a
// policy with loader: true, then without: the kernel's mapping of the
// program itself at exec and its two mappings of an ELF file make records
// with their paths and build ids (the ones the files' .note.gnu.build-id
// hold), reported once per file; a mapped file that is no ELF makes none;
// and with no policy asking for loader the sensor is detached and nothing
// is recorded. Two policies share the sensor until the last one goes.
func TestLoaderEvents(t *testing.T) {
	testutil.RequireFeature(t, kernelfeatures.Kprobe)
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	dir, err := filepath.EvalSymlinks(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	prog := testutil.CProgram(t, "testdata/loader/mapexec.c", filepath.Join(dir, "mapexec"))
	lib := filepath.Join(dir, "libtarget.so")
	copyFile(t, prog, lib)
	text := filepath.Join(dir, "notes.txt")
	writeFiles(t, dir, map[string]string{"notes.txt": strings.Repeat("not an ELF file\n", 600)})
	id := buildID(t, prog)
	t.Logf("build id of %s: %x", prog, id)

	// a policy without loader attaches no loader sensor
	h.loadWith(t, noLoaderPolicy, compiler.MechKprobe)
	if h.m.LoaderAttached() {
		t.Fatal("a policy without loader attached the loader sensor")
	}
	h.run(t, prog, lib, text)
	if recs := h.loaderRecords(t); len(recs) != 0 {
		t.Fatalf("loader records without a loader policy: %+v", recs)
	}

	for _, name := range []string{"loader-a", "loader-b"} {
		if _, err := h.tryLoad(t, loaderPolicy, "", name); err != nil {
			t.Fatal(err)
		}
	}
	if !h.m.LoaderAttached() {
		t.Fatal("loader sensor not attached")
	}
	listed := false
	for _, p := range h.m.Status() {
		for _, hk := range p.Hooks {
			listed = listed || (p.Name == "loader-a" && hk.Kind == HookKindLoader && hk.Call == "perf_event_mmap_output")
		}
	}
	if !listed {
		t.Errorf("status does not list loader-a's loader: %+v", h.m.Status())
	}
	// a new version of one keeps the sensor attached (make-before-break)
	if err := h.m.ReplacePolicy(h.parse(t, loaderPolicy, "", "loader-a")); err != nil {
		t.Fatal(err)
	}

	pid := h.runPid(t, prog, lib, text)
	recs := h.loaderRecords(t)
	byPath := map[string]int{}
	for _, r := range recs {
		if r.Pid != pid {
			continue
		}
		byPath[r.Path]++
		if r.Path != text && !bytes.Equal(r.BuildID, id) {
			t.Errorf("%s: build id %x, want %x", r.Path, r.BuildID, id)
		}
	}
	t.Logf("records of pid %d by path: %v", pid, byPath)
	if byPath[prog] < 1 {
		t.Errorf("no record of the program mapped at exec (%s)", prog)
	}
	if byPath[lib] != 2 {
		t.Errorf("%d records of %s, want one per mapping: 2", byPath[lib], lib)
	}
	if byPath[text] != 0 {
		t.Errorf("%d records of %s, which has no build id", byPath[text], text)
	}
	// events: one per file
	l := hookevent.NewLoaders()
	events := map[string]int{}
	for _, r := range recs {
		if r.Pid == pid {
			if ev := l.Event(r, nil, nil); ev != nil {
				events[ev.GetProcessLoader().GetPath()]++
				if got := hex.EncodeToString(ev.GetProcessLoader().GetBuildid()); got != hex.EncodeToString(id) {
					t.Errorf("event build id %s", got)
				}
			}
		}
	}
	if events[prog] != 1 || events[lib] != 1 || len(events) != 2 {
		t.Errorf("events by path %v, want one for %s and one for %s", events, prog, lib)
	}

	// the sensor stays while one loader policy is left, and goes with it
	if err := h.m.Unload("loader-a"); err != nil {
		t.Fatal(err)
	}
	if !h.m.LoaderAttached() {
		t.Fatal("loader sensor detached while loader-b still asks for it")
	}
	if err := h.m.Unload("loader-b"); err != nil {
		t.Fatal(err)
	}
	if h.m.LoaderAttached() {
		t.Fatal("loader sensor still attached with no loader policy left")
	}
	h.loaderRecords(t) // what was in flight
	h.run(t, prog, lib, text)
	if recs := h.loaderRecords(t); len(recs) != 0 {
		t.Fatalf("%d loader records after the last loader policy was unloaded: %+v", len(recs), recs[0])
	}
}

// runPid runs a command as run does and returns its pid.
func (h *harness) runPid(t *testing.T, name string, args ...string) uint32 {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = h.dir
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	h.mu.Lock()
	h.pids[pid] = name
	h.mu.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, buf.String())
	}
	return pid
}

// loaderRecords drains the ring buffer and returns its loader records, of
// any process.
func (h *harness) loaderRecords(t *testing.T) []*observer.Loader {
	t.Helper()
	var out []*observer.Loader
	var d observer.Decoder
	for _, raw := range testutil.DrainRing(t, h.rd, 300*time.Millisecond) {
		v, err := d.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := v.(*observer.Loader); ok {
			out = append(out, l)
		}
	}
	return out
}

// buildID reads an ELF file's GNU build id, as readelf -n shows it.
func buildID(t *testing.T, path string) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatalf("%s has no .note.gnu.build-id", path)
	}
	note, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	// namesz, descsz, type, then the name "GNU\0" and the id
	if len(note) < 16 {
		t.Fatalf("%s: build id note of %d bytes", path, len(note))
	}
	namesz, descsz := binary.LittleEndian.Uint32(note), binary.LittleEndian.Uint32(note[4:])
	start := 12 + (namesz+3)&^3
	if typ := binary.LittleEndian.Uint32(note[8:]); typ != 3 || int(start+descsz) > len(note) {
		t.Fatalf("%s: note type %d, %d bytes of id, in %d bytes", path, typ, descsz, len(note))
	}
	return note[start : start+descsz]
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
