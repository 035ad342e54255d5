package hooks

import (
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// BenchmarkShapedPolicies times an open/read/close of a file no policy
// matches with 0, 1 and 50 shaped policies loaded (a Prefix watch on
// security_file_permission, a Sigkill on one fd_install path), through the
// syscall dispatcher and through kprobes: the cost a policy adds to every
// read, and whether it grows with the number of policies. The kprobe half
// is what a host with kprobes runs; this project's host has none, and the
// debian lanes run it (docs/performance.md has the command). The loop uses
// raw system calls, so that each operation is exactly three.
//
// With rename=1 each operation first renames a scratch file, which makes
// the dispatcher forget every file it passed over (a rename may change
// paths): the cost of a call the verdict cache cannot decide, as for a
// file read for the first time.
func BenchmarkShapedPolicies(b *testing.B) {
	testutil.RequireRoot(b)
	for _, mech := range []string{compiler.MechSyscallTracepoint, compiler.MechKprobe} {
		b.Run(mech, func(b *testing.B) {
			testutil.RequireFeature(b, map[string]string{compiler.MechSyscallTracepoint: "tp_btf", compiler.MechKprobe: "kprobe"}[mech])
			for _, rename := range []int{0, 1} {
				for _, n := range []int{0, 1, 50} {
					b.Run(fmt.Sprintf("rename=%d/policies=%d", rename, n), func(b *testing.B) { benchmarkShaped(b, mech, n, rename == 1) })
				}
			}
		})
	}
}

func benchmarkShaped(b *testing.B, mech string, n int, rename bool) {
	h := newHarness(b, mech, testutil.Kernel(b).Map())
	writeFiles(b, h.dir, map[string]string{"plain": "x", "scratch-0": ""})
	plain := filepath.Join(h.dir, "plain")
	scratch := [2]string{filepath.Join(h.dir, "scratch-0"), filepath.Join(h.dir, "scratch-1")}
	for i := range n {
		if err := h.m.LoadPolicy(h.shaped(b, i)); err != nil {
			b.Fatalf("policy %d: %v", i, err)
		}
	}
	buf := make([]byte, 16)
	b.ResetTimer()
	for i := range b.N {
		if rename {
			if err := unix.Rename(scratch[i%2], scratch[(i+1)%2]); err != nil {
				b.Fatal(err)
			}
		}
		fd, err := unix.Open(plain, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		if k, err := unix.Read(fd, buf); err != nil || k != 1 {
			b.Fatalf("read %s: %d bytes, %v", plain, k, err)
		}
		unix.Close(fd)
	}
}
