package tracingpolicy

import (
	"math"
	"syscall"
	"testing"
)

// FuzzRangeValues: InRange's and FileType's value parsers never panic,
// and what they accept is what the kernel can compare: a range within the
// type's bounds whose lower bound is not above the upper one in the
// type's order (the kernel's unsigned x - lo <= hi - lo relies on it), a
// file type that is an S_IFMT value.
func FuzzRangeValues(f *testing.F) {
	for _, s := range []string{"1:5", "-5:5", "0x10:0x20", "5:1", "0:18446744073709551615", "-1:4294967296", "3", ":", "reg", "pipe", ""} {
		f.Add(s)
	}
	bounds := map[ArgType][2]float64{
		TypeInt: {math.MinInt32, math.MaxInt32}, TypeUint32: {0, math.MaxUint32},
		TypeInt8: {math.MinInt8, math.MaxInt8}, TypeUint16: {0, math.MaxUint16},
		TypeInt64: {math.MinInt64, math.MaxInt64}, TypeUint64: {0, math.MaxUint64},
	}
	f.Fuzz(func(t *testing.T, s string) {
		for typ, b := range bounds {
			lo, hi, err := ParseRange(s, typ)
			if err != nil {
				continue
			}
			l, h := float64(lo), float64(hi)
			if !typ.Signed() {
				l, h = float64(uint64(lo)), float64(uint64(hi))
			}
			if l > h || l < b[0] || h > b[1] {
				t.Fatalf("%s %q: range %v:%v", typ, s, lo, hi)
			}
			// the kernel's test holds at both bounds and not beyond them
			in := func(x int64) bool { return uint64(x-lo) <= uint64(hi-lo) }
			if !in(lo) || !in(hi) || (l > b[0] && in(lo-1)) || (h < b[1] && in(hi+1)) {
				t.Fatalf("%s %q: the kernel's range test is wrong at the bounds of %v:%v", typ, s, lo, hi)
			}
		}
		if v, err := ParseFileType(s); err == nil {
			switch v {
			case syscall.S_IFREG, syscall.S_IFDIR, syscall.S_IFLNK, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK, syscall.S_IFIFO:
			default:
				t.Fatalf("%q: file type %#o", s, v)
			}
		}
	})
}
