package tracingpolicy

import (
	"fmt"
	"strings"
	"syscall"
)

// Tetragon's range, substring and file-type operators (its releases 1.6
// and 1.7).
const (
	// OpInRange and OpNotInRange take "lo:hi" values on integers: the
	// argument is (not) within one of the inclusive ranges.
	OpInRange    Operator = "InRange"
	OpNotInRange Operator = "NotInRange"
	// OpSubString and OpSubStringIgnCase hold when one of the values
	// occurs in a string (ASCII letters compared without case for
	// IgnCase).
	OpSubString        Operator = "SubString"
	OpSubStringIgnCase Operator = "SubStringIgnCase"
	// OpFileType and OpNotFileType compare the type of a file (reg, dir,
	// lnk, ...), as the inode's mode gives it.
	OpFileType    Operator = "FileType"
	OpNotFileType Operator = "NotFileType"
)

// fileTypeByName maps Tetragon's file type names to S_IFMT values.
var fileTypeByName = map[string]uint32{
	"reg": syscall.S_IFREG, "regular": syscall.S_IFREG,
	"dir": syscall.S_IFDIR,
	"lnk": syscall.S_IFLNK, "link": syscall.S_IFLNK,
	"sock": syscall.S_IFSOCK, "socket": syscall.S_IFSOCK,
	"chr": syscall.S_IFCHR, "char": syscall.S_IFCHR,
	"blk": syscall.S_IFBLK, "block": syscall.S_IFBLK,
	"fifo": syscall.S_IFIFO, "pipe": syscall.S_IFIFO,
}

const fileTypeNames = "reg (regular), dir, lnk (link), sock (socket), chr (char), blk (block), fifo (pipe)"

// ParseFileType parses a FileType value: Tetragon's name of a file type.
func ParseFileType(s string) (uint32, error) {
	if v, ok := fileTypeByName[s]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("%q is not a file type (%s)", truncate(s), fileTypeNames)
}

// ParseRange parses an InRange value "lo:hi" for an argument of type t:
// both bounds are integers of that type (decimal, 0x hex or 0 octal) and
// lo is not above hi in the type's order.
func ParseRange(s string, t ArgType) (lo, hi int64, err error) {
	l, h, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a range: want lo:hi", truncate(s))
	}
	if lo, err = parseInt(strings.TrimSpace(l), t); err != nil {
		return 0, 0, fmt.Errorf("range %q: %w", truncate(s), err)
	}
	if hi, err = parseInt(strings.TrimSpace(h), t); err != nil {
		return 0, 0, fmt.Errorf("range %q: %w", truncate(s), err)
	}
	if t.Signed() && lo > hi || !t.Signed() && uint64(lo) > uint64(hi) {
		return 0, 0, fmt.Errorf("range %q is empty: its lower bound is above its upper bound", truncate(s))
	}
	return lo, hi, nil
}

// addValue checks one value of a range, substring or file-type operator
// on an argument of type t and adds it, parsed, to a.
func (a *ArgSelector) addValue(t ArgType, s string) error {
	switch a.Operator {
	case OpInRange, OpNotInRange:
		lo, hi, err := ParseRange(s, t)
		if err != nil {
			return err
		}
		a.Ranges = append(a.Ranges, Range{lo, hi})
	case OpSubString, OpSubStringIgnCase:
		if s == "" {
			return fmt.Errorf("an empty substring occurs in every string")
		}
		if len(s) > maxSubString {
			return fmt.Errorf("substring %.40q... is %d bytes, at most %d", s, len(s), maxSubString)
		}
	case OpFileType, OpNotFileType:
		v, err := ParseFileType(s)
		if err != nil {
			return err
		}
		a.IntValues = append(a.IntValues, int64(v))
	}
	return nil
}

// maxSubString is the longest value SubString looks for, as for the
// other string operators (sensor.MaxMatchString): the kernel looks values
// up in an LPM trie.
const maxSubString = 254
