package hooks

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// writeHelperEnv makes the test binary write the first $value bytes of
// "abcdefXYZ\x00" to /dev/null with one write(2): the buffer goes on past
// the length the call is given, up to its NUL byte.
const writeHelperEnv = "TETRAGON_HOOKS_WRITE_HELPER"

// writeHelper is the helper writeHelperEnv asks for.
func writeHelper(v string) int {
	n, err := strconv.Atoi(v)
	buf := []byte("abcdefXYZ\x00")
	if err != nil || n < 0 || n > len(buf) {
		return 2
	}
	fd, err := syscall.Open("/dev/null", syscall.O_WRONLY, 0)
	if err != nil {
		return 1
	}
	if _, err := syscall.Write(fd, buf[:n]); err != nil {
		return 1
	}
	os.Stdout.WriteString("survived\n")
	return 0
}

// readHelperEnv makes the test binary read the file $value into a 64-byte
// buffer of 'X's, ending in a NUL byte, with one read(2).
const readHelperEnv = "TETRAGON_HOOKS_READ_HELPER"

// readHelper is the helper readHelperEnv asks for.
func readHelper(path string) int {
	buf := []byte(strings.Repeat("X", 63) + "\x00")
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		return 1
	}
	if _, err := syscall.Read(fd, buf); err != nil {
		return 1
	}
	os.Stdout.WriteString("survived\n")
	return 0
}

// returnCopyPolicy reports read(2)'s buffer as the call filled it.
const returnCopyPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "char-buf-return-copy"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "sys_read"
    syscall: true
    args:
    - index: 0
      type: "int"
    - index: 1
      type: "char_buf"
      sizeArgIndex: 3
      returnCopy: true
    - index: 2
      type: "size_t"
    selectors:
    - matchBinaries:
      - operator: In
        values:
        - "%[3]s"
`

// A char_buf with its length in argument 2 (sizeArgIndex 3), as in
// Tetragon's write and tty examples.
const sizeArgPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "char-buf-size"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "sys_write"
    syscall: true
    args:
    - index: 0
      type: "int"
    - index: 1
      type: "char_buf"
      sizeArgIndex: 3
    - index: 2
      type: "size_t"
    selectors:
    - matchBinaries:
      - operator: In
        values:
        - "%[3]s"
`

// TestCharBufSizeArg: sizeArgIndex cuts the buffer to the length the call
// was given, not to its first NUL byte, on kprobes (the syscall-tracepoint
// mapping reads no char_buf, and says so); returnCopy reads it when the
// call returns; a size argument that is not declared is refused at load;
// maxData is served.
func TestCharBufSizeArg(t *testing.T) {
	testutil.RequireRoot(t)
	features := testutil.Kernel(t).Map()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("syscall-tracepoint refuses", func(t *testing.T) {
		h := newHarness(t, compiler.MechSyscallTracepoint, features)
		_, err := h.tryLoad(t, sizeArgPolicy, compiler.MechSyscallTracepoint, self)
		if err == nil || !strings.Contains(err.Error(), `type "char_buf" is not supported on syscall hooks by the syscall-tracepoint mechanism`) {
			t.Fatalf("error %v, want char_buf refused by the mapping", err)
		}
	})
	// maxData reads no more than the record's string slot, which the
	// buffers here fit in: the same events
	for name, policy := range map[string]string{
		compiler.MechKprobe:              sizeArgPolicy,
		compiler.MechKprobe + "/maxData": strings.Replace(sizeArgPolicy, "sizeArgIndex: 3", "sizeArgIndex: 3\n      maxData: true", 1),
	} {
		mech := compiler.MechKprobe
		t.Run(name, func(t *testing.T) {
			testutil.RequireFeature(t, "kprobe")
			h := newHarness(t, mech, features)
			h.loadWith(t, policy, mech, self)
			for _, n := range []string{"6", "3", "10"} {
				if killed := h.runHelper(t, writeHelperEnv, n); killed {
					t.Fatalf("write helper %s killed", n)
				}
			}
			// the writes to /dev/null; the helper's "survived" line is
			// another write of it, to stdout
			var got []string
			for _, e := range h.events(t) {
				if strings.Contains(e.text, "bytes:") && !strings.Contains(e.text, "survived") {
					// the kprobe's function is the syscall's symbol; the
					// descriptor number is the helper's first free one
					text := strings.Replace(e.text, " __x64_sys_write ", " sys_write ", 1)
					got = append(got, regexp.MustCompile(`int:[0-9]+ `).ReplaceAllString(text, "int:FD "))
				}
			}
			// bytes_arg, as Tetragon reports a char_buf; the 10-byte
			// write ends with a NUL byte, where the kernel's string read
			// stops: truncated_bytes_arg, with the call's size
			want := []string{
				`helper sys_write POST int:FD bytes:"abcdef" size:6`,
				`helper sys_write POST int:FD bytes:"abc" size:3`,
				`helper sys_write POST int:FD truncated-bytes:"abcdefXYZ"/10 size:10`,
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("events:\n%q\nwant:\n%q", got, want)
			}
		})
	}

	// returnCopy: the buffer read when the call returns, as read(2)
	// filled it (the 'X's it held before would show at entry), cut to
	// the bytes it returned
	t.Run(compiler.MechKprobe+"/returnCopy", func(t *testing.T) {
		testutil.RequireFeature(t, "kretprobe")
		h := newHarness(t, compiler.MechKprobe, features)
		h.loadWith(t, returnCopyPolicy, compiler.MechKprobe, self)
		data := filepath.Join(h.dir, "data")
		if err := os.WriteFile(data, []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if killed := h.runHelper(t, readHelperEnv, data); killed {
			t.Fatal("read helper killed")
		}
		// the Go runtime's own reads at start have other sizes
		var got []string
		for _, e := range h.events(t) {
			if strings.HasSuffix(e.text, " size:64") {
				text := strings.Replace(e.text, " __x64_sys_read ", " sys_read ", 1)
				got = append(got, regexp.MustCompile(`int:[0-9]+ `).ReplaceAllString(text, "int:FD "))
			}
		}
		want := []string{`helper sys_read POST int:FD bytes:"hello\n" size:64`}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("events:\n%q\nwant:\n%q", got, want)
		}
	})

	t.Run("refused", func(t *testing.T) {
		h := newHarness(t, compiler.MechSyscallTracepoint, features)
		for _, c := range []struct{ option, want string }{
			{"sizeArgIndex: 4", "sizeArgIndex 4 names argument 3, the buffer's length, which args must declare with an integer type"},
			{"returnCopy: true", `type "char_buf" is not supported on syscall hooks by the syscall-tracepoint mechanism`},
		} {
			policy := strings.Replace(sizeArgPolicy, "sizeArgIndex: 3", c.option, 1)
			if _, err := h.tryLoad(t, policy, compiler.MechSyscallTracepoint, self); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want %q", c.option, err, c.want)
			}
		}
		if st := h.m.Status(); len(st) != 0 {
			t.Fatalf("refused policies left %+v", st)
		}
	})
}
