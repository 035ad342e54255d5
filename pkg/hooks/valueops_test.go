package hooks

import (
	"fmt"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

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

// The compiled filter entries, and the refusals, of the range, substring
// and file-type operators.
func TestCompileValueMatch(t *testing.T) {
	num := sensor.Arg{Kind: sensor.KindInt}
	file := sensor.Arg{Source: sensor.SrcRegKFile, Kind: sensor.KindPath}
	sock := sensor.Arg{Source: sensor.SrcRegSocket, Kind: sensor.KindPath}
	for _, tc := range []struct {
		arg    sensor.Arg
		typ    tp.ArgType
		op     string
		values []string
		want   string
	}{
		{num, "int64", "InRange", []string{"1:5", "-3:-1"}, "op 21 ints [1 5 -3 -1] strings []"},
		{num, "int64", "NotInRange", []string{"0x10:0x20"}, "op 22 ints [16 32] strings []"},
		{num, "uint64", "InRange", []string{"0:18446744073709551615"}, "op 21 ints [0 -1] strings []"},
		{num, "int64", "InRange", []string{"5"}, `operator InRange: "5" is not a range: want lo:hi`},
		{num, "int64", "InRange", []string{"1:x"}, `operator InRange: range "1:x": value "x" is not an integer (type int64)`},
		{num, "int64", "InRange", []string{"1:2", "1:2", "1:2", "1:2", "1:2"}, "operator InRange: 5 ranges, at most 4 in the kernel"},
		{file, "file", "InRange", []string{"1:2"}, "operator InRange needs an integer argument"},
		{file, "file", "SubString", []string{"etc", "Sh"}, "op 23 ints [] strings [etc Sh]"},
		{file, "file", "SubStringIgnCase", []string{"ShAdoW"}, "op 24 ints [] strings [shadow]"},
		{file, "file", "SubString", []string{""}, "operator SubString: an empty substring occurs in every string"},
		{file, "file", "SubString", []string{strings.Repeat("a", 254)}, fmt.Sprintf("operator SubString: substring %.40q... is 254 bytes, at most %d can be matched in the kernel", strings.Repeat("a", 254), sensor.MaxMatchString)},
		{num, "int64", "SubString", []string{"a"}, "operator SubString needs a string or path argument"},
		{sock, "string", "SubString", []string{"a"}, "operator SubString needs a string or path argument"},
		{file, "file", "FileType", []string{"reg", "dir", "lnk"}, fmt.Sprintf("op 25 ints [%d %d %d] strings []", syscall.S_IFREG, syscall.S_IFDIR, syscall.S_IFLNK)},
		{file, "file", "NotFileType", []string{"pipe", "char", "block", "socket"}, fmt.Sprintf("op 26 ints [%d %d %d %d] strings []", syscall.S_IFIFO, syscall.S_IFCHR, syscall.S_IFBLK, syscall.S_IFSOCK)},
		{file, "file", "FileType", []string{"file"}, `operator FileType: "file" is not a file type (reg (regular), dir, lnk (link), sock (socket), chr (char), blk (block), fifo (pipe))`},
		{num, "int64", "FileType", []string{"reg"}, "operator FileType needs a file or path argument"},
	} {
		cm, err := parseAndCompile(tc.arg, tc.typ, tc.op, tc.values)
		got := fmt.Sprintf("op %d ints %v strings %v", cm.Op, cm.Ints, cm.Strings)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s %v: got\n%s\nwant\n%s", tc.op, tc.values, got, tc.want)
		}
	}
}

// returnHolds, the user-space copy of the kernel's evaluation the mapping
// uses to refuse matchReturnArgs that cannot hold, agrees on ranges.
func TestReturnHoldsRange(t *testing.T) {
	cm := sensor.Match{Op: sensor.OpInRange, Ints: []int64{-13, -1, 5, 5}}
	for v, want := range map[int64]bool{-14: false, -13: true, -1: true, 0: false, 5: true, 6: false} {
		if got := returnHolds(cm, v); got != want {
			t.Errorf("InRange -13:-1, 5:5 on %d: %v, want %v", v, got, want)
		}
	}
	cm.Op = sensor.OpNotInRange
	if returnHolds(cm, -2) || !returnHolds(cm, 0) {
		t.Errorf("NotInRange -13:-1, 5:5: wrong on -2 or 0")
	}
}
