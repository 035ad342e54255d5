package hooks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// runFileHelper runs the file helper as a process of the test, named op in
// events, and returns its output.
func (h *harness) runFileHelper(t *testing.T, op, path string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), testutil.FileHelperEnv+"="+op+":"+path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.pids[uint32(cmd.Process.Pid)] = op
	h.mu.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("file helper %s %s: %v\n%s", op, path, err, out.String())
	}
	return out.String()
}

// retPolicy is a policy (a template for harness.load) with one return probe
// on call, its args YAML, a returnArg of type int unless noReturnArg, and
// one selector: argument fileIdx Equal one of files (under the test
// directory), plus extra filters at the selector's indentation.
func retPolicy(call, args string, fileIdx int, files []string, extra string, noReturnArg bool) string {
	var vals strings.Builder
	for _, f := range files {
		fmt.Fprintf(&vals, "        - \"%%[2]s/%s\"\n", f)
	}
	ret := "    returnArg:\n      index: 0\n      type: \"int\"\n"
	if noReturnArg {
		ret = ""
	}
	return fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "ret-%s"
spec:
  options:
  - name: hook-mechanism
    value: "%%[1]s"
  kprobes:
  - call: "%s"
    syscall: false
    return: true
    args:
%s%s    selectors:
    - matchArgs:
      - index: %d
        operator: "Equal"
        values:
%s%s`, strings.ReplaceAll(call, "_", "-"), call, args, ret, fileIdx, vals.String(), extra)
}

const (
	fileArg     = "    - index: 0\n      type: \"file\"\n"
	fileMaskArg = fileArg + "    - index: 1\n      type: \"int\"\n"
	mmapArgs    = fileArg + "    - index: 1\n      type: \"uint32\"\n    - index: 2\n      type: \"uint32\"\n"
	pathArg     = "    - index: 0\n      type: \"path\"\n"
	fdFileArgs  = "    - index: 0\n      type: \"int\"\n    - index: 1\n      type: \"file\"\n"
)

// retEvents returns the events as "<text> => <return>", repeats collapsed:
// a kprobe counts the kernel's calls of the function, the mapping the
// syscalls (see TestMechanismsAgree).
func retEvents(t *testing.T, h *harness) []string {
	var out []string
	for _, e := range h.events(t) {
		out = append(out, e.text+" => "+e.ret)
	}
	return slices.Compact(out)
}

func checkEvents(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: events:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestReturnProbes runs return probes (return: true, returnArg int) on the
// functions the syscall-tracepoint mapping serves, through each mechanism
// the kernel offers, on real workloads, and checks the return values the
// events carry. The mapping derives them at the syscall's exit
// (docs/mechanisms.md): a syscall that succeeded returned 0 from the
// function; one that failed after the function passed it gives no event
// through the mapping, where a kretprobe reports 0.
func TestReturnProbes(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		feats := testutil.Kernel(t).Map()
		kprobe := mech == compiler.MechKprobe
		t.Run("security_file_permission", func(t *testing.T) {
			h := newHarness(t, mech, feats)
			writeFiles(t, h.dir, map[string]string{"data": "secret", "dir/x": ""})
			h.load(t, retPolicy("security_file_permission", fileMaskArg, 0, []string{"data", "dir"},
				"      - index: 1\n        operator: \"Equal\"\n        values:\n        - \"4\"\n", false))
			if out, _ := h.run(t, "cat", filepath.Join(h.dir, "data")); out != "secret" {
				t.Fatalf("cat: %q", out)
			}
			if out := h.runFileHelper(t, "readdir", filepath.Join(h.dir, "dir")); out != "read: is a directory\n" {
				t.Fatalf("readdir helper: %q", out)
			}
			want := []string{"cat security_file_permission POST file:$DIR/data int:4 => int:0"}
			if kprobe {
				want = append(want, "readdir security_file_permission POST file:$DIR/dir int:4 => int:0")
			}
			checkEvents(t, "cat data; read(2) on a directory", retEvents(t, h), want)
		})
		t.Run("security_file_open", func(t *testing.T) {
			h := newHarness(t, mech, feats)
			writeFiles(t, h.dir, map[string]string{"data": "secret"})
			h.load(t, retPolicy("security_file_open", fileArg, 0, []string{"data"}, "", false))
			h.run(t, "cat", filepath.Join(h.dir, "data"))
			checkEvents(t, "cat data", retEvents(t, h), []string{"cat security_file_open POST file:$DIR/data => int:0"})
		})
		t.Run("fd_install", func(t *testing.T) {
			h := newHarness(t, mech, feats)
			writeFiles(t, h.dir, map[string]string{"data": "secret"})
			h.load(t, retPolicy("fd_install", fdFileArgs, 1, []string{"data"}, "", true))
			h.run(t, "cat", filepath.Join(h.dir, "data"))
			got := h.events(t)
			// fd_install returns void: a kretprobe reads whatever the
			// register holds; the mapping reports no return value
			if len(got) != 1 || got[0].text != "cat fd_install POST int:3 file:$DIR/data" || !kprobe && got[0].ret != "" {
				t.Fatalf("cat data: events %+v", got)
			}
		})
		t.Run("security_mmap_file", func(t *testing.T) {
			h := newHarness(t, mech, feats)
			writeFiles(t, h.dir, map[string]string{"data": "secret"})
			h.load(t, retPolicy("security_mmap_file", mmapArgs, 0, []string{"data"}, "", false))
			if out := h.runFileHelper(t, "mmap-rw", filepath.Join(h.dir, "data")); out != "mapped \"secret\"\nmmap write: permission denied\n" {
				t.Fatalf("mmap helper: %q", out)
			}
			// PROT_READ, MAP_SHARED
			want := []string{"mmap-rw security_mmap_file POST file:$DIR/data uint:1 uint:1 => int:0"}
			if kprobe {
				// the writable mapping passed the check; mmap refused it after
				want = append(want, "mmap-rw security_mmap_file POST file:$DIR/data uint:3 uint:1 => int:0")
			}
			checkEvents(t, "mmap of data", retEvents(t, h), want)
		})
		t.Run("security_path_truncate", func(t *testing.T) {
			h := newHarness(t, mech, feats)
			writeFiles(t, h.dir, map[string]string{"trunc": "secret"})
			h.load(t, retPolicy("security_path_truncate", pathArg, 0, []string{"trunc"}, "", false))
			if out := h.runFileHelper(t, "truncate", filepath.Join(h.dir, "trunc")); out != "truncate: <nil>\n" {
				t.Fatalf("truncate helper: %q", out)
			}
			checkEvents(t, "truncate(2)", retEvents(t, h), []string{"truncate security_path_truncate POST path:$DIR/trunc => int:0"})
		})
		t.Run("matchReturnArgs", func(t *testing.T) {
			h := newHarness(t, mech, feats)
			writeFiles(t, h.dir, map[string]string{"data": "secret"})
			// a refusal: the mapping reports the check's EACCES on read(2)
			h.load(t, retPolicy("security_file_permission", fileMaskArg, 0, []string{"data"},
				"      matchReturnArgs:\n      - index: 0\n        operator: \"Equal\"\n        values:\n        - \"-13\"\n", false))
			h.run(t, "cat", filepath.Join(h.dir, "data"))
			checkEvents(t, "cat data, matching only EACCES", retEvents(t, h), nil)
			if st := h.stats(t); st.Calls == 0 || st.Matched != 0 {
				t.Fatalf("the hook saw %d calls and matched %d, want calls and no match", st.Calls, st.Matched)
			}
		})
	})
}

// TestReturnProbesMappingRefuses: what the mapping cannot tell at the
// syscall's exit is refused at load, saying why.
func TestReturnProbesMappingRefuses(t *testing.T) {
	testutil.RequireRoot(t)
	h := newHarness(t, compiler.MechSyscallTracepoint, map[string]bool{})
	for _, c := range []struct{ name, policy, want string }{
		{"fd_install returnArg", retPolicy("fd_install", fdFileArgs, 1, []string{"data"}, "", false),
			"fd_install: returnArg: fd_install returns void"},
		{"a refused open", retPolicy("security_file_open", fileArg, 0, []string{"data"},
			"      matchReturnArgs:\n      - index: 0\n        operator: \"NotEqual\"\n        values:\n        - \"0\"\n", false),
			"matchReturnArgs NotEqual [0] holds for none of the return values the syscall-tracepoint mapping can report for security_file_open ([0]): a failed open leaves no file descriptor"},
		{"a refused mmap", retPolicy("security_mmap_file", mmapArgs, 0, []string{"data"},
			"      matchReturnArgs:\n      - index: 0\n        operator: \"LessThan\"\n        values:\n        - \"0\"\n", false),
			"for security_mmap_file ([0]): mmap itself refuses with EACCES or EPERM after the check"},
		{"an error the check does not give", retPolicy("security_file_permission", fileMaskArg, 0, []string{"data"},
			"      matchReturnArgs:\n      - index: 0\n        operator: \"Equal\"\n        values:\n        - \"-5\"\n", false),
			"for security_file_permission ([0 -13 -1])"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.tryLoad(t, c.policy, compiler.MechSyscallTracepoint)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("load: %v\nwant an error containing %q", err, c.want)
			}
		})
	}
}
