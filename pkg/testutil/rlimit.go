package testutil

import (
	"os"
	"syscall"
	"testing"
)

// WithoutFreeFiles runs fn with the process's open-file limit at what is
// open now, so that any new open in fn fails with EMFILE, as when the agent
// has run out of file descriptors. The limit is restored after fn.
func WithoutFreeFiles(t *testing.T, fn func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// open returns the lowest free descriptor: with the limit at it, every
	// open fails
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	free := null.Fd()
	null.Close()
	low := old
	low.Cur = uint64(free)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	fn()
}
