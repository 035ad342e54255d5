package agent

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

	"google.golang.org/protobuf/proto"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/encoder"
	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestLoaderThroughAgent adds a policy of loader: true alone through the
// agent's policy API. Where the kernel cannot attach kprobes (the host) it
// is refused, naming the feature, and nothing is listed or attached (fail
// closed). Elsewhere, a program that maps an ELF file executable (twice,
// as a library's segments) gets one process_loader event for itself
// (mapped by the kernel at exec) and one for the file, from the agent's
// pipeline: the process from the cache, the file's path and the build id
// its .note.gnu.build-id holds; its wire bytes (the server sends them)
// decode to the same event, the compact and JSON lines are Tetragon's, and
// the policy is listed with Tetragon's __loader__ sensor.
func TestLoaderThroughAgent(t *testing.T) {
	a := startAgent(t)
	const policy = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: loader\nspec:\n  loader: true\n"
	if !testutil.Kernel(t).Map()[kernelfeatures.Kprobe] {
		_, err := a.policies.Add([]byte(policy))
		if err == nil || !strings.Contains(err.Error(), "request:6:11: spec.loader: loader needs a kprobe on perf_event_mmap_output") || !strings.Contains(err.Error(), "(probe feature kprobe)") {
			t.Fatalf("adding a loader policy on a kernel without kprobes: %v", err)
		}
		if n := len(a.policies.ListAPI().GetPolicies()); n != 0 || a.Hooks().LoaderAttached() {
			t.Fatalf("the refused policy left %d listed, loader attached %v", n, a.Hooks().LoaderAttached())
		}
		return
	}
	dir := workdir(t)
	prog := testutil.CProgram(t, "testdata/loader/mapexec.c", filepath.Join(dir, "mapexec"))
	lib := filepath.Join(dir, "libtarget.so")
	b, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, b, 0o755); err != nil {
		t.Fatal(err)
	}
	id := gnuBuildID(t, prog)

	if _, err := a.policies.Add([]byte(policy)); err != nil {
		t.Fatal(err)
	}
	sub := a.Bus().Subscribe(1000, func(ev *api.GetEventsResponse) bool {
		return strings.HasPrefix(ev.GetProcessLoader().GetPath(), dir+"/")
	})

	cmd := exec.Command(prog, lib)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", prog, err, out)
	}
	pid := uint32(cmd.Process.Pid)

	byPath := map[string]*api.ProcessLoader{}
	var libEvent []byte
	deadline := time.After(10 * time.Second)
	// after both arrived, a second more for duplicates
	var settle <-chan time.Time
	for done := false; !done; {
		select {
		case ev := <-sub.C():
			l := ev.GetProcessLoader()
			if l.GetProcess().GetPid().GetValue() != pid {
				continue
			}
			if byPath[l.GetPath()] != nil {
				t.Errorf("a second event for %s: %v", l.GetPath(), l)
			}
			byPath[l.GetPath()] = l
			if !bytes.Equal(l.GetBuildid(), id) {
				t.Errorf("%s: build id %x, want %x", l.GetPath(), l.GetBuildid(), id)
			}
			wire, err := ev.Wire()
			if err != nil {
				t.Fatalf("wire bytes: %v", err)
			}
			back := &api.GetEventsResponse{}
			if err := proto.Unmarshal(wire, back); err != nil || !proto.Equal(back, ev.GetEventsResponse) {
				t.Fatalf("wire bytes decode to %v (%v), want %v", back, err, ev.GetEventsResponse)
			}
			if l.GetPath() == lib {
				libEvent = wire
			}
			if byPath[prog] != nil && byPath[lib] != nil && settle == nil {
				settle = time.After(time.Second)
			}
		case <-settle:
			done = true
		case <-deadline:
			t.Fatalf("events by path after 10s: %v; want %s and %s", byPath, prog, lib)
		}
	}
	// the file is mapped after exec: the process is the program, with its
	// parent. The program's own first mapping happens inside exec, before
	// its exec event: the process is then what the pid was before, as in
	// Tetragon; its later mappings by its startup code (mprotect) are the
	// same file for the same pid, not reported again.
	l := byPath[lib]
	if l.GetProcess().GetBinary() != prog || l.GetProcess().GetCwd() != dir || l.GetParent() == nil {
		t.Errorf("%s: process %v parent %v", lib, l.GetProcess(), l.GetParent())
	}

	ev := &api.GetEventsResponse{}
	if err := proto.Unmarshal(libEvent, ev); err != nil {
		t.Fatal(err)
	}
	var line bytes.Buffer
	if err := encoder.NewCompact(&line, encoder.CompactOptions{Color: encoder.ColorNever}).Encode(ev); err != nil {
		t.Fatal(err)
	}
	if want := " " + prog + " " + hex.EncodeToString(id) + " " + lib + "\n"; !strings.HasPrefix(line.String(), "🧬 loader  ") || !strings.HasSuffix(line.String(), want) {
		t.Errorf("compact line %q, want 🧬 loader ...%q", line.String(), want)
	}
	line.Reset()
	if err := encoder.NewJSON(&line).Encode(ev); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line.String(), `{"process_loader":{"process":{`) || !strings.Contains(line.String(), `"path":"`+lib+`"`) {
		t.Errorf("JSON line %s", line.String())
	}

	var listed *api.TracingPolicyStatus
	for _, p := range a.policies.ListAPI().GetPolicies() {
		if p.GetName() == "loader" {
			listed = p
		}
	}
	if len(listed.GetSensors()) != 1 || listed.GetSensors()[0] != "__loader__" || len(listed.GetHooks()) != 1 ||
		listed.GetHooks()[0].GetCall() != "perf_event_mmap_output" || listed.GetHooks()[0].GetPosted() < 2 {
		t.Errorf("listed as %v", listed)
	}
	if err := a.policies.Delete("loader"); err != nil {
		t.Fatal(err)
	}
	if a.Hooks().LoaderAttached() {
		t.Error("loader sensor attached after its policy was unloaded")
	}
}

// gnuBuildID reads an ELF file's GNU build id, as readelf -n shows it.
func gnuBuildID(t *testing.T, path string) []byte {
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
	if err != nil || len(note) < 16 {
		t.Fatalf("%s: build id note %x: %v", path, note, err)
	}
	namesz, descsz := binary.LittleEndian.Uint32(note), binary.LittleEndian.Uint32(note[4:])
	start := 12 + (namesz+3)&^3
	if int(start+descsz) > len(note) {
		t.Fatalf("%s: build id note %x", path, note)
	}
	return note[start : start+descsz]
}
