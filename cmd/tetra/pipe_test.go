package main

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGrowPipe: a pipe as the output is enlarged to pipeSize; a regular
// file and a buffer are left alone.
func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	before, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if before >= pipeSize {
		t.Fatalf("a new pipe already holds %d bytes: the test shows nothing", before)
	}
	growPipe(w)
	if n, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0); err != nil || n != pipeSize {
		t.Fatalf("pipe size %d (%v) after growPipe, want %d", n, err, pipeSize)
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	growPipe(f)
	growPipe(&bytes.Buffer{})
	if _, err := f.WriteString("x\n"); err != nil {
		t.Fatalf("the file is unusable after growPipe: %v", err)
	}
}
