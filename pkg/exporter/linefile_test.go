package exporter

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
	"gopkg.in/natefinch/lumberjack.v2"
)

// TestFIFOGrown: an export file that is a FIFO gets a 1 MiB pipe once the
// export has it open, and the lines written reach its reader unchanged.
func TestFIFOGrown(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "export")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// the reader first: the export's open for writing waits for one
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	size := func() int {
		n, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := size(); n >= fifoSize {
		t.Fatalf("the FIFO starts with %d bytes: nothing to show", n)
	}
	f := &lineFile{name: fifo, lj: &lumberjack.Logger{Filename: fifo}, log: zerolog.Nop()}
	defer f.Close()
	line := []byte(`{"process_exec":{}}` + "\n")
	if n, err := f.Write(line); err != nil || n != len(line) {
		t.Fatalf("writing: %d, %v", n, err)
	}
	if n := size(); n != fifoSize {
		t.Errorf("the FIFO's pipe holds %d bytes, want %d", n, fifoSize)
	}
	got := make([]byte, 2*len(line))
	n, err := r.Read(got)
	if err != nil || string(got[:n]) != string(line) {
		t.Errorf("read %q, %v; want %q", got[:n], err, line)
	}
}
