package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// The range, substring and file-type operators on real opens, through
// each mechanism: cat opens a regular file and a directory (which it then
// fails to read), sh opens a FIFO read-write (which does not block). The
// names are unlike anything in the test directory's own path, so a
// substring matches only the name it is meant for.
func TestValueOperators(t *testing.T) {
	const reg, dir, fifo = "Qx7Data.TXT", "zSubq", "pipeKw"
	forEachMechanism(t, func(t *testing.T, mech string) {
		h := newHarness(t, mech, testutil.Kernel(t).Map())
		writeFiles(t, h.dir, map[string]string{reg: "x"})
		if err := os.Mkdir(filepath.Join(h.dir, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(h.dir, fifo), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			arg    int
			op     string
			values string
			want   []string
		}{
			{1, "FileType", `"reg"`, []string{reg}},
			{1, "FileType", `"dir", "fifo"`, []string{dir, fifo}},
			{1, "FileType", `"regular", "sock", "lnk", "chr", "blk"`, []string{reg}},
			{1, "NotFileType", `"reg"`, []string{dir, fifo}},
			{1, "NotFileType", `"reg", "dir", "pipe"`, nil},
			{1, "SubString", `"7Data.T"`, []string{reg}},
			{1, "SubString", `"7data.t"`, nil},
			{1, "SubString", `"Subq", "eKw"`, []string{dir, fifo}},
			{1, "SubString", `"Qx7Data.TXTx"`, nil},
			{1, "SubStringIgnCase", `"qX7dATA.txt"`, []string{reg}},
			{1, "SubStringIgnCase", `"ZSUB", "nothere"`, []string{dir}},
			{1, "SubStringIgnCase", `"Q"`, []string{reg, dir}},
			// cat's file is its fd 3, whatever the opens before it
			// (the dynamic loader's are closed by then)
			{0, "InRange", `"3:3"`, []string{reg, dir}},
			{0, "InRange", `"0:2", "4:1000"`, nil},
			{0, "InRange", `"-5:3"`, []string{reg, dir}},
			{0, "NotInRange", `"4:10"`, []string{reg, dir}},
			{0, "NotInRange", `"0:3"`, nil},
		} {
			name := fmt.Sprintf("%s %s", c.op, c.values)
			if err := h.m.LoadPolicy(h.parse(t, valueOpsPolicy, mech, c.arg, c.op, c.values)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			h.run(t, "cat", filepath.Join(h.dir, reg))
			h.runFails(t, "cat", filepath.Join(h.dir, dir))
			if c.arg == 1 {
				// sh's own fd for the FIFO is not known, so only the
				// file cases open it
				h.run(t, "sh", "-c", "exec 3<>"+filepath.Join(h.dir, fifo))
			}
			var got []string
			for _, e := range h.events(t) {
				for _, f := range []string{reg, dir, fifo} {
					if strings.HasSuffix(e.text, "/"+f) {
						got = append(got, f)
					}
				}
			}
			if err := h.m.Unload("valueops"); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: events on %q, want %q", name, got, c.want)
			} else {
				t.Logf("%s: events on %q, as expected", name, got)
			}
		}
	})
}

// valueOpsPolicy hooks fd_install (the fd, then the file) with one
// selector: the file is in the test directory, and argument %[3]d passes
// operator %[4]s with values %[5]s.
const valueOpsPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "valueops"
spec:
  options:
  - name: hook-mechanism
    value: "%[1]s"
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: "int"
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Prefix"
        values: ["%[2]s/"]
      - index: %[3]d
        operator: "%[4]s"
        values: [%[5]s]
`
