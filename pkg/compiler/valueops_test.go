package compiler

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
)

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
